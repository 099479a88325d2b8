-- TOTP second factors (RFC 6238) of the MFA signature: one row per enrolment. The seed is stored sealed
-- (envelope encryption: `sealed_secret` holds the AES-256-GCM ciphertext and its data key wrapped by the
-- credential key, KMS in AWS; shared/signing/secret-sealer.ts), never in the clear.
--
-- A credential is pending until its first code confirms it (`confirmed_at`); an identity holds at most one
-- confirmed credential that is not revoked (confirming a new one revokes the old in the same statement,
-- serialised by the identity's version; no unique index holds it, since PostgreSQL checks one row by row and
-- that statement confirms one row and revokes another).
-- `last_used_step` is the RFC 6238 time step of the last code accepted: a code is accepted only for a later
-- step, so each code (and any older one) is usable once. The application may change only the lifecycle
-- columns; the trigger keeps a revocation final and the step moving forward only.
-- Every statement can run again (see migrate.ts).
CREATE TABLE IF NOT EXISTS totp_credentials (
  id uuid PRIMARY KEY,
  identity_id uuid NOT NULL REFERENCES identities (id),
  sealed_secret jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  confirmed_at timestamptz,
  not_after timestamptz,
  revoked_at timestamptz,
  last_used_step bigint NOT NULL DEFAULT 0,
  CONSTRAINT totp_credentials_window CHECK (
    (confirmed_at IS NULL OR confirmed_at >= created_at)
    AND (not_after IS NULL OR not_after >= created_at)
    AND (revoked_at IS NULL OR revoked_at >= created_at))
);


CREATE OR REPLACE FUNCTION totp_credentials_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
    RAISE EXCEPTION 'TOTP credential % was revoked at %: a revocation is final', OLD.id, OLD.revoked_at
      USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.confirmed_at IS NOT NULL AND NEW.confirmed_at IS DISTINCT FROM OLD.confirmed_at THEN
    RAISE EXCEPTION 'TOTP credential % was confirmed at %', OLD.id, OLD.confirmed_at
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.last_used_step < OLD.last_used_step THEN
    RAISE EXCEPTION 'TOTP credential % used step %: a used step never goes back', OLD.id, OLD.last_used_step
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS totp_credentials_forward_only ON totp_credentials;
CREATE TRIGGER totp_credentials_forward_only BEFORE UPDATE ON totp_credentials
  FOR EACH ROW EXECUTE FUNCTION totp_credentials_forward_only();

GRANT SELECT, INSERT ON totp_credentials TO contracts_application;
GRANT UPDATE (confirmed_at, not_after, revoked_at, last_used_step) ON totp_credentials TO contracts_application;
