-- A signing key's validity window: `created_at` (registration), `not_after` (set when the key is rotated:
-- its successor registered, the old key retired at the end of a grace period) and `revoked_at` (revoked at
-- once). A signature is valid when its key was valid at the signature's time, so both stay: a key's past
-- signatures verify after it is retired or revoked, new ones are refused.
--
-- The application may change these two columns and nothing else of a key (its material, kid and identity
-- are fixed once registered), and a revocation is final: the trigger refuses to clear or move it, and a
-- retirement may only be brought forward, so no write can make a retired or revoked key valid again.
-- Every statement can run again (see migrate.ts).
ALTER TABLE identity_keys ADD COLUMN IF NOT EXISTS not_after timestamptz;

ALTER TABLE identity_keys DROP CONSTRAINT IF EXISTS identity_keys_window;
ALTER TABLE identity_keys ADD CONSTRAINT identity_keys_window
  CHECK ((not_after IS NULL OR not_after >= created_at) AND (revoked_at IS NULL OR revoked_at >= created_at));

CREATE OR REPLACE FUNCTION identity_keys_validity_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
    RAISE EXCEPTION 'identity key % of % was revoked at %: a revocation is final', OLD.kid, OLD.identity_id, OLD.revoked_at
      USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.not_after IS NOT NULL AND (NEW.not_after IS NULL OR NEW.not_after > OLD.not_after) THEN
    RAISE EXCEPTION 'identity key % of % retires at %: a retirement may only be brought forward', OLD.kid, OLD.identity_id, OLD.not_after
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS identity_keys_validity_final ON identity_keys;
CREATE TRIGGER identity_keys_validity_final BEFORE UPDATE ON identity_keys
  FOR EACH ROW EXECUTE FUNCTION identity_keys_validity_final();

GRANT UPDATE (not_after, revoked_at) ON identity_keys TO contracts_application;
