-- WebAuthn passkeys, the credentials of biometric signatures (shared/signing/webauthn.ts), and the challenges
-- their ceremonies answer.
--
-- `webauthn_credentials`: one row per registered passkey; its public key both as the authenticator gave it
-- (COSE) and as a JWK. The authenticator's credential id is unique across the platform (WebAuthn §7.1 step
-- 26: a credential id registered by another user is refused). `sign_count` is the last signature counter
-- accepted: an assertion must carry a greater one unless the authenticator keeps none (always 0), so a
-- cloned authenticator shows itself. The application may change only the lifecycle columns; the trigger
-- keeps a revocation final and the counter moving forward.
--
-- `webauthn_challenges`: each issued challenge (registration) or nonce (signature), bound to one identity,
-- answerable until `expires_at`, consumed once (`consumed_at`). A registration consumes its challenge in
-- the statement that stores the credential.
-- Every statement can run again (see migrate.ts).
CREATE TABLE IF NOT EXISTS webauthn_credentials (
  id uuid PRIMARY KEY,
  identity_id uuid NOT NULL REFERENCES identities (id),
  credential_id text NOT NULL UNIQUE,
  name text NOT NULL,
  alg text NOT NULL CHECK (alg IN ('ES256', 'EdDSA', 'RS256')),
  jwk jsonb NOT NULL,
  cose text NOT NULL,
  rp_id text NOT NULL,
  aaguid uuid NOT NULL,
  sign_count bigint NOT NULL CHECK (sign_count >= 0),
  backup_eligible boolean NOT NULL,
  transports jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL,
  last_used_at timestamptz,
  not_after timestamptz,
  revoked_at timestamptz,
  CONSTRAINT webauthn_credentials_window CHECK (
    (not_after IS NULL OR not_after >= created_at) AND (revoked_at IS NULL OR revoked_at >= created_at))
);

CREATE INDEX IF NOT EXISTS webauthn_credentials_identity ON webauthn_credentials (identity_id, created_at);

CREATE OR REPLACE FUNCTION webauthn_credentials_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
    RAISE EXCEPTION 'passkey % was revoked at %: a revocation is final', OLD.id, OLD.revoked_at
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.sign_count < OLD.sign_count THEN
    RAISE EXCEPTION 'passkey % counted % signatures: a counter never goes back', OLD.id, OLD.sign_count
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS webauthn_credentials_forward_only ON webauthn_credentials;
CREATE TRIGGER webauthn_credentials_forward_only BEFORE UPDATE ON webauthn_credentials
  FOR EACH ROW EXECUTE FUNCTION webauthn_credentials_forward_only();

CREATE TABLE IF NOT EXISTS webauthn_challenges (
  challenge text PRIMARY KEY,
  identity_id uuid NOT NULL REFERENCES identities (id),
  ceremony text NOT NULL CHECK (ceremony IN ('registration', 'signature')),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  consumed_at timestamptz,
  CONSTRAINT webauthn_challenges_window CHECK (expires_at > created_at)
);

CREATE INDEX IF NOT EXISTS webauthn_challenges_identity ON webauthn_challenges (identity_id, expires_at);

GRANT SELECT, INSERT ON webauthn_credentials TO contracts_application;
GRANT UPDATE (sign_count, last_used_at, not_after, revoked_at) ON webauthn_credentials TO contracts_application;
GRANT SELECT, INSERT, DELETE ON webauthn_challenges TO contracts_application;
GRANT UPDATE (consumed_at) ON webauthn_challenges TO contracts_application;
