-- Enclaves: the AWS Nitro Enclaves in which training runs under a contract. The seed's columns (id, name,
-- provider_id, status, attestation, configuration, metrics, created_at, updated_at) plus the contract, the
-- region, the row version (the ETag and the audit chain's seq) and the provisioning workflow's handles.
--
-- The enclave's provider is its contract's provider, enforced by a composite foreign key so the two can never
-- disagree (enclaves are listed under their provider as in the seed). Its target needs a unique index on
-- contracts (id, provider_id): redundant with the primary key for uniqueness, but PostgreSQL accepts only a
-- unique index or constraint as a foreign key's target.
--
-- No ON DELETE CASCADE: only never-signed drafts are ever deleted, and an enclave needs an Active (hence
-- signed) contract, so a contract with enclaves is never deleted; should that rule ever change, the delete
-- fails instead of silently erasing enclave records.
CREATE UNIQUE INDEX IF NOT EXISTS contracts_id_provider ON contracts (id, provider_id);

CREATE TABLE IF NOT EXISTS enclaves (
  id             uuid PRIMARY KEY,
  name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  contract_id    uuid NOT NULL,
  provider_id    uuid NOT NULL REFERENCES identities (id),
  status         text NOT NULL CHECK (
                   status IN ('Initializing', 'Running', 'Suspended', 'Failed', 'Terminated')
                 ),
  -- the last attestation verdict; null before the first one and after a suspension voids it
  attestation    jsonb,
  configuration  jsonb NOT NULL,
  -- the latest runtime metrics; null until the parent agent reports
  metrics        jsonb,
  region         text NOT NULL,
  version        integer NOT NULL DEFAULT 1 CHECK (version > 0),
  -- the parent EC2 instance, once launched
  instance_id    text,
  -- the provisioning workflow execution in flight (or last run)
  execution_arn  text,
  status_reason  text,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  CONSTRAINT enclaves_contract_provider FOREIGN KEY (contract_id, provider_id)
    REFERENCES contracts (id, provider_id)
);
-- "Enclaves of a contract, newest first" (cursor on created_at, id); also serves the contract foreign key.
CREATE INDEX IF NOT EXISTS enclaves_of_contract ON enclaves (contract_id, created_at DESC, id DESC);
-- "Enclaves of a provider, newest first" and "every enclave, newest first" (admins and auditors).
CREATE INDEX IF NOT EXISTS enclaves_of_provider ON enclaves (provider_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS enclaves_newest ON enclaves (created_at DESC, id DESC);
-- "The enclave of an instance" (the parent agent's attestation and EC2 state-change events). The workflow
-- launches one parent per enclave (Nitro would allow four, but then PCR4 and the instance's IAM role, which
-- bind an attestation to its parent, would no longer identify one enclave), so an instance id is claimed once.
CREATE UNIQUE INDEX IF NOT EXISTS enclaves_of_instance ON enclaves (instance_id) WHERE instance_id IS NOT NULL;
