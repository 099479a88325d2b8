-- Tamper-evident audit trail: one hash chain per entity (no global lock on the hot path). Each record's
-- hash is SHA-256 over the RFC 8785 canonical JSON of the record with the previous record's hash, and
-- (entity_id, seq) is unique, so a chain cannot fork; rows can be neither updated nor deleted.
CREATE TABLE IF NOT EXISTS audit_log (
  entity_id    uuid NOT NULL,
  seq          integer NOT NULL CHECK (seq > 0),
  entity_type  text NOT NULL,
  action       text NOT NULL,
  actor_id     uuid,
  occurred_at  timestamptz NOT NULL,
  data         jsonb NOT NULL,
  prev_hash    text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash         text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  PRIMARY KEY (entity_id, seq)
);

CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- Domain events written in the same transaction as the change; a publisher forwards them to EventBridge.
CREATE TABLE IF NOT EXISTS outbox (
  id             uuid PRIMARY KEY,
  aggregate_type text NOT NULL,
  aggregate_id   uuid NOT NULL,
  event_type     text NOT NULL,
  payload        jsonb NOT NULL,
  occurred_at    timestamptz NOT NULL,
  published_at   timestamptz,
  attempts       integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (occurred_at, id) WHERE published_at IS NULL;

-- Idempotency keys of creating POSTs, stored in the write's own transaction (Stripe's pattern), so a retry
-- after a crash can never apply the write twice.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  caller_id    uuid NOT NULL,
  key          text NOT NULL,
  route        text NOT NULL,
  fingerprint  text NOT NULL,
  status_code  integer NOT NULL,
  response     jsonb NOT NULL,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (caller_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys (created_at);
