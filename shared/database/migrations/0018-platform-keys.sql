-- The platform's countersigning keys (shared/signing/platform-key-registry.ts): every key that ever signed,
-- with its public JWK and its validity window, so that every countersignature and checkpoint stays
-- verifiable after a rotation moved the signing alias to a new key (`GET /platform/keys` serves them).
--
-- A key is valid from `valid_from` (registered by the rotation that created it, before the alias named it,
-- or by its first signature for a key the alias named without one) until `valid_until` (set by the rotation
-- that replaced it, a grace period after the alias moved: KMS applies an alias change eventually). The
-- current key is the one without `valid_until`. A retirement is final and may not be moved; nothing else of
-- a key changes once registered.
-- Every statement can run again (see migrate.ts).
CREATE TABLE IF NOT EXISTS platform_keys (
  kid text PRIMARY KEY,
  key_id text NOT NULL UNIQUE,
  jwk jsonb NOT NULL,
  valid_from timestamptz NOT NULL,
  valid_until timestamptz,
  CONSTRAINT platform_keys_window CHECK (valid_until IS NULL OR valid_until >= valid_from),
  CONSTRAINT platform_keys_kid CHECK (jwk->>'kid' = kid)
);

CREATE OR REPLACE FUNCTION platform_keys_retirement_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.valid_until IS NOT NULL AND NEW.valid_until IS DISTINCT FROM OLD.valid_until THEN
    RAISE EXCEPTION 'platform key % was retired at %: a retirement is final', OLD.kid, OLD.valid_until
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS platform_keys_retirement_final ON platform_keys;
CREATE TRIGGER platform_keys_retirement_final BEFORE UPDATE ON platform_keys
  FOR EACH ROW EXECUTE FUNCTION platform_keys_retirement_final();

GRANT SELECT, INSERT ON platform_keys TO contracts_application;
GRANT UPDATE (valid_until) ON platform_keys TO contracts_application;
