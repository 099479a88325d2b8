-- An identity's status: `active`, `suspended` (it may not sign, approve or act until an admin makes it active
-- again) or `revoked` (final: no write can make it active again; its past signatures stay verifiable).
-- Changed by admins only, each change audited with the identity's version (shared/identities).
-- Every statement can run again (see migrate.ts).
ALTER TABLE identities ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'active';
ALTER TABLE identities ADD COLUMN IF NOT EXISTS status_reason text;

ALTER TABLE identities DROP CONSTRAINT IF EXISTS identities_status;
ALTER TABLE identities ADD CONSTRAINT identities_status CHECK (status IN ('active', 'suspended', 'revoked'));

CREATE OR REPLACE FUNCTION identities_revocation_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'revoked' AND NEW.status IS DISTINCT FROM 'revoked' THEN
    RAISE EXCEPTION 'identity % was revoked: a revocation is final', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS identities_revocation_final ON identities;
CREATE TRIGGER identities_revocation_final BEFORE UPDATE ON identities
  FOR EACH ROW EXECUTE FUNCTION identities_revocation_final();
