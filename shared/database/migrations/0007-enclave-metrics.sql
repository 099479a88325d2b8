-- Runtime metrics samples the enclave parent agent reports (POST /enclaves/{id}/metrics). High-frequency and
-- not state changes: no version, no audit record, no event. One sample per enclave and reporting instant, so
-- an agent's retry of the same report is a no-op. `enclaves.metrics` keeps the latest sample for reading
-- with the enclave; this table holds the history, read newest first with a keyset on reported_at.
CREATE TABLE IF NOT EXISTS enclave_metrics (
  enclave_id   uuid NOT NULL REFERENCES enclaves (id),
  reported_at  timestamptz NOT NULL,
  received_at  timestamptz NOT NULL,
  sample       jsonb NOT NULL,
  PRIMARY KEY (enclave_id, reported_at)
);
-- "Samples of an enclave, newest first" is the primary key read backwards; this one serves a retention purge.
CREATE INDEX IF NOT EXISTS enclave_metrics_age ON enclave_metrics (received_at);
