-- Party keys: a kid names a key within its identity (it is no longer global, so no identity can squat a kid
-- another wants), and a key's material is bound to one identity only (its RFC 7638 thumbprint is unique), so
-- no party can register another's published key and present that party's signatures as its own.
-- Every statement can run again (the Data API commits DDL statement by statement; see migrate.ts).

ALTER TABLE identity_keys ADD COLUMN IF NOT EXISTS thumbprint text;

-- The RFC 7638 thumbprint of the stored key: SHA-256 of the JSON object of its type's required members in
-- lexicographic order without whitespace (RFC 7638 §3.2; RFC 8037 §2 for OKP), base64url without padding
-- (the kid default, and what the service computes with jose for new keys). Each member is written with
-- jsonb's own string quoting, which escapes exactly as RFC 8785 (and JSON.stringify) does.
UPDATE identity_keys
SET thumbprint = rtrim(translate(encode(sha256(convert_to(
  CASE jwk ->> 'kty'
    WHEN 'EC' THEN '{"crv":' || (jwk -> 'crv')::text || ',"kty":"EC","x":' || (jwk -> 'x')::text
      || ',"y":' || (jwk -> 'y')::text || '}'
    WHEN 'OKP' THEN '{"crv":' || (jwk -> 'crv')::text || ',"kty":"OKP","x":' || (jwk -> 'x')::text || '}'
    WHEN 'RSA' THEN '{"e":' || (jwk -> 'e')::text || ',"kty":"RSA","n":' || (jwk -> 'n')::text || '}'
  END, 'UTF8')), 'base64'), '+/', '-_'), '=')
WHERE thumbprint IS NULL;

ALTER TABLE identity_keys ALTER COLUMN thumbprint SET NOT NULL;

-- False for a legacy row that does not hold its material's binding; such rows stay out of the unique index
-- below (they are kept, never deleted: contracts and audit records name them).
ALTER TABLE identity_keys ADD COLUMN IF NOT EXISTS binds_material boolean NOT NULL DEFAULT true;

-- Legacy material registered by two or more identities: every one of those rows is revoked, the earliest
-- too. Before proof of possession nobody proved holding the private key, and registration order proves
-- nothing (a party's key can be published before that party registers it); if the earliest row kept the
-- binding and it were the copier's, the copier could still present the holder's past signatures as its
-- own. The true holder registers the key again, with a proof only the holder can make (under a new kid
-- when the old one was the default thumbprint). The revocation time records when this happened. Only
-- binding rows are counted, so a run after such a re-registration leaves the re-registered key alone.
UPDATE identity_keys
SET revoked_at = coalesce(revoked_at, now()), binds_material = false
WHERE binds_material AND thumbprint IN (
  SELECT thumbprint FROM identity_keys WHERE binds_material
  GROUP BY thumbprint HAVING count(DISTINCT identity_id) > 1
);

-- Legacy material registered twice by the same identity under two kids: harmless (one holder), so both
-- stay usable; the earliest row holds the binding.
UPDATE identity_keys AS later
SET binds_material = false
WHERE later.binds_material AND EXISTS (
  SELECT 1 FROM identity_keys AS earlier
  WHERE earlier.thumbprint = later.thumbprint AND earlier.binds_material
    AND (earlier.created_at, earlier.kid) < (later.created_at, later.kid)
);

ALTER TABLE identity_keys DROP CONSTRAINT IF EXISTS identity_keys_pkey;
ALTER TABLE identity_keys ADD CONSTRAINT identity_keys_pkey PRIMARY KEY (identity_id, kid);
-- The primary key now leads with identity_id and serves listing an identity's keys.
DROP INDEX IF EXISTS identity_keys_identity;
CREATE UNIQUE INDEX IF NOT EXISTS identity_keys_thumbprint ON identity_keys (thumbprint) WHERE binds_material;
