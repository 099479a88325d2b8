-- The application's privileges, held by a role nobody logs in as: the functions run their statements as a
-- login user that is a member of it (the Data API signs in with the application's own secret, whose user the
-- deployment creates and Secrets Manager rotates between two users; see shared/database/database-users.ts).
-- The master user only migrates. What the role may do is what the code does, table by table, and no more:
-- the audit trail and the checkpoints are append-only for the application, so a compromised function can add
-- records but can neither rewrite nor remove them (their hash chains would show it; the database refuses it).
--
-- Roles belong to the whole cluster (a test server holds many databases), so creating it tolerates a
-- concurrent creator. Every later migration that creates a table grants on it here-like, explicitly: the
-- local stack's Data API runs the functions as this role, so a missing grant fails the end-to-end suites.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'contracts_application') THEN
    CREATE ROLE contracts_application NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END;
$$;

GRANT USAGE ON SCHEMA public TO contracts_application;

GRANT SELECT, INSERT, UPDATE ON identities TO contracts_application;
GRANT SELECT, INSERT ON identity_keys TO contracts_application;
GRANT SELECT, INSERT, UPDATE, DELETE ON contracts TO contracts_application;
GRANT SELECT, INSERT, UPDATE ON measurement_sets TO contracts_application;
GRANT SELECT, INSERT, UPDATE ON enclaves TO contracts_application;
GRANT SELECT, INSERT ON enclave_metrics TO contracts_application;
GRANT SELECT, INSERT ON audit_log TO contracts_application;
GRANT SELECT, INSERT ON audit_checkpoints TO contracts_application;
GRANT SELECT, INSERT ON audit_checkpoint_leaves TO contracts_application;
-- Written by audit_log's trigger in the writer's transaction, emptied by the checkpoint job.
GRANT SELECT, INSERT, UPDATE, DELETE ON audit_unanchored_heads TO contracts_application;
GRANT SELECT, INSERT, UPDATE ON outbox TO contracts_application;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO contracts_application;
