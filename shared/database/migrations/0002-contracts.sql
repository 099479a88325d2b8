CREATE TABLE IF NOT EXISTS contracts (
  id              uuid PRIMARY KEY,
  title           text NOT NULL,
  description     text NOT NULL,
  provider_id     uuid NOT NULL REFERENCES identities (id),
  consumer_id     uuid NOT NULL REFERENCES identities (id),
  status          text NOT NULL CHECK (
                    status IN ('Draft', 'PendingSignature', 'Active', 'Suspended', 'Terminated', 'Expired')
                  ),
  terms           jsonb NOT NULL,
  signatures      jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  -- concurrency and lifecycle
  version         integer NOT NULL DEFAULT 1 CHECK (version > 0),
  content_version integer NOT NULL DEFAULT 1,
  content_digest  text NOT NULL CHECK (content_digest ~ '^[0-9a-f]{64}$'),
  ever_signed     boolean NOT NULL DEFAULT false,
  status_reason   text,
  suspended_by    uuid REFERENCES identities (id),
  valid_until     timestamptz NOT NULL,
  CHECK (provider_id <> consumer_id)
);
-- "Contracts of a party, newest first" (cursor on created_at, id).
CREATE INDEX IF NOT EXISTS contracts_provider_newest ON contracts (provider_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS contracts_consumer_newest ON contracts (consumer_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS contracts_newest ON contracts (created_at DESC, id DESC);
-- Containment queries over terms (datasets, frameworks, residency).
CREATE INDEX IF NOT EXISTS contracts_terms ON contracts USING gin (terms jsonb_path_ops);
-- The expiry sweep: live contracts by end of validity.
CREATE INDEX IF NOT EXISTS contracts_expiry ON contracts (valid_until) WHERE status IN ('Active', 'Suspended');
