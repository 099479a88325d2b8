-- Signed checkpoints anchor the audit chains: periodically the platform takes the heads of every chain
-- that grew since the last checkpoint, builds an RFC 6962 Merkle tree over them and signs its root with
-- the previous checkpoint's root, so rewriting or truncating a chain after a checkpoint is detectable by
-- anyone holding the platform's public key, and checkpoints themselves form a chain.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
  seq             integer PRIMARY KEY CHECK (seq > 0),
  created_at      timestamptz NOT NULL,
  prev_root       text NOT NULL CHECK (prev_root ~ '^[0-9a-f]{64}$'),
  tree_root       text NOT NULL CHECK (tree_root ~ '^[0-9a-f]{64}$'),
  tree_size       integer NOT NULL CHECK (tree_size > 0),
  signed_payload  text NOT NULL,
  kid             text NOT NULL,
  alg             text NOT NULL,
  signature       text NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_checkpoint_leaves (
  checkpoint_seq  integer NOT NULL REFERENCES audit_checkpoints (seq),
  leaf_index      integer NOT NULL CHECK (leaf_index >= 0),
  entity_id       uuid NOT NULL,
  seq             integer NOT NULL,
  hash            text NOT NULL,
  PRIMARY KEY (checkpoint_seq, leaf_index)
);
CREATE INDEX IF NOT EXISTS audit_checkpoint_leaves_entity
  ON audit_checkpoint_leaves (entity_id, checkpoint_seq DESC);

DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
DROP TRIGGER IF EXISTS audit_checkpoint_leaves_append_only ON audit_checkpoint_leaves;
CREATE TRIGGER audit_checkpoint_leaves_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint_leaves
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- The append-only guard now names the table it protects.
CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
