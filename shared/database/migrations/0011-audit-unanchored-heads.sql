-- The chains whose head no checkpoint covers yet, one row per chain with its head: what the checkpoint job
-- anchors next. Without it the job found them by reading the head of every chain in audit_log and looking
-- each up among the checkpoint leaves, work that grew with the whole trail (millions of records) however
-- little had changed since the last run; with it, the job reads and removes only what changed.
--
-- A trigger keeps the rows, so every writer of audit_log (audited writes, security refusals, anything
-- later) is covered without knowing about this table, and in the writer's own transaction: a record is
-- never committed without its chain being queued. The checkpoint removes the heads it anchors in the
-- statement that inserts it (see audit-checkpoints.ts). Every statement can run again (the Data API commits
-- DDL statement by statement; see migrate.ts).
CREATE TABLE IF NOT EXISTS audit_unanchored_heads (
  entity_id  uuid PRIMARY KEY,
  seq        integer NOT NULL CHECK (seq > 0),
  hash       text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

-- A chain's records arrive in seq order (its writes are serialised by the entity's version or, for refusal
-- chains, by the (entity_id, seq) key), so the newest record is the head; the guard keeps an older one from
-- replacing it all the same.
CREATE OR REPLACE FUNCTION audit_log_queue_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_unanchored_heads (entity_id, seq, hash) VALUES (NEW.entity_id, NEW.seq, NEW.hash)
  ON CONFLICT (entity_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash
    WHERE audit_unanchored_heads.seq < EXCLUDED.seq;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS audit_log_queue_head ON audit_log;
CREATE TRIGGER audit_log_queue_head AFTER INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_queue_head();

-- The heads written before the trigger existed that no checkpoint covers: the query the checkpoint job
-- used to run, once. (After the trigger, so a record written meanwhile is queued either way.)
INSERT INTO audit_unanchored_heads (entity_id, seq, hash)
SELECT a.entity_id, a.seq, a.hash
FROM (SELECT DISTINCT ON (entity_id) entity_id, seq, hash FROM audit_log ORDER BY entity_id, seq DESC) a
WHERE NOT EXISTS (
  SELECT 1 FROM audit_checkpoint_leaves l WHERE l.entity_id = a.entity_id AND l.seq >= a.seq
)
ON CONFLICT (entity_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash
  WHERE audit_unanchored_heads.seq < EXCLUDED.seq;
