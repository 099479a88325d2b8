-- Image measurements an enclave may run under a contract: proposed by a party, approved by BOTH parties,
-- each with a signature over the canonical set. Only Approved sets enter an attestation policy. Deleting a
-- never-signed draft removes its proposals with it (their audit chains stay).
CREATE TABLE IF NOT EXISTS measurement_sets (
  id            uuid PRIMARY KEY,
  contract_id   uuid NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
  pcr0          text NOT NULL CHECK (pcr0 ~ '^[0-9a-f]{96}$'),
  pcr1          text NOT NULL CHECK (pcr1 ~ '^[0-9a-f]{96}$'),
  pcr2          text NOT NULL CHECK (pcr2 ~ '^[0-9a-f]{96}$'),
  pcr8          text CHECK (pcr8 ~ '^[0-9a-f]{96}$'),
  status        text NOT NULL CHECK (status IN ('Proposed', 'Approved')),
  approvals     jsonb NOT NULL DEFAULT '[]'::jsonb,
  proposed_by   uuid NOT NULL REFERENCES identities (id),
  version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);
-- One row per distinct set and contract (pcr8 absent counts as its own value).
CREATE UNIQUE INDEX IF NOT EXISTS measurement_sets_distinct
  ON measurement_sets (contract_id, pcr0, pcr1, pcr2, coalesce(pcr8, ''));
CREATE INDEX IF NOT EXISTS measurement_sets_of_contract ON measurement_sets (contract_id, created_at);
