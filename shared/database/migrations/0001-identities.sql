-- Identities: every principal that calls the API, found from the token's subject.
CREATE TABLE IF NOT EXISTS identities (
  id            uuid PRIMARY KEY,
  subject       text NOT NULL UNIQUE,
  name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
  display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  email         text,
  roles         text[] NOT NULL CHECK (
                  cardinality(roles) > 0
                  AND roles <@ ARRAY['provider', 'consumer', 'admin', 'auditor']::text[]
                ),
  version       integer NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);

-- Public signing keys registered by identities; the kid is the RFC 7638 thumbprint unless one is given.
CREATE TABLE IF NOT EXISTS identity_keys (
  kid           text PRIMARY KEY,
  identity_id   uuid NOT NULL REFERENCES identities (id),
  alg           text NOT NULL CHECK (alg IN ('ES256', 'ES384', 'EdDSA', 'PS256')),
  jwk           jsonb NOT NULL,
  created_at    timestamptz NOT NULL,
  revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS identity_keys_identity ON identity_keys (identity_id);
