-- Each contract's data key (shared/keys/contract-keys.ts): the customer-managed KMS key created when the
-- contract became Active, and the state the platform last applied to it: its key policy (the text put, its
-- SHA-256 digest and a version counting the rewrites), what that policy admits (the measurement sets and
-- the Running enclaves, with the PCR4 standing for each), the key's state in KMS, and the date KMS deletes
-- it when a termination scheduled that. The row is an audited entity of its own (`version` is its audit
-- chain's seq): every change of the policy or the state is a record with the policy's digest.
--
-- One key per contract (the primary key), never reassigned: `key_arn` does not change once set.
-- Every statement can run again (see migrate.ts).
CREATE TABLE IF NOT EXISTS contract_keys (
  contract_id     uuid PRIMARY KEY REFERENCES contracts (id),
  -- the key's own audit entity id
  id              uuid NOT NULL UNIQUE,
  key_arn         text NOT NULL UNIQUE CHECK (key_arn LIKE 'arn:%:kms:%:key/%'),
  alias           text NOT NULL UNIQUE CHECK (alias LIKE 'alias/%'),
  state           text NOT NULL CHECK (state IN ('Enabled', 'Disabled', 'PendingDeletion')),
  policy          text NOT NULL CHECK (length(policy) BETWEEN 2 AND 32768),
  policy_digest   text NOT NULL CHECK (policy_digest ~ '^[0-9a-f]{64}$'),
  policy_version  integer NOT NULL CHECK (policy_version > 0),
  admitted        jsonb NOT NULL,
  deletion_date   timestamptz,
  version         integer NOT NULL CHECK (version > 0),
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  CONSTRAINT contract_keys_deletion CHECK ((state = 'PendingDeletion') = (deletion_date IS NOT NULL))
);

CREATE OR REPLACE FUNCTION contract_keys_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.key_arn IS DISTINCT FROM OLD.key_arn OR NEW.id IS DISTINCT FROM OLD.id
     OR NEW.alias IS DISTINCT FROM OLD.alias THEN
    RAISE EXCEPTION 'the key of contract % is %: a contract key is never reassigned', OLD.contract_id, OLD.key_arn
      USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.state = 'PendingDeletion' AND NEW.state <> 'PendingDeletion' THEN
    RAISE EXCEPTION 'the key of contract % is pending deletion: the platform never cancels it', OLD.contract_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS contract_keys_immutable ON contract_keys;
CREATE TRIGGER contract_keys_immutable BEFORE UPDATE ON contract_keys
  FOR EACH ROW EXECUTE FUNCTION contract_keys_immutable();

GRANT SELECT, INSERT ON contract_keys TO contracts_application;
GRANT UPDATE (state, policy, policy_digest, policy_version, admitted, deletion_date, version, updated_at)
  ON contract_keys TO contracts_application;
