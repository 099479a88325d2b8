-- Every contract list reads one page, whatever the table holds. The lists had (party, created_at, id) and
-- (created_at, id): a list filtered by status walked them newest first and dropped every other status, so a
-- status rare among the recent contracts (Expired, Draft, ...) read thousands of rows of a busy catalogue,
-- and an auditor's `GET /contracts?status=Expired` about 18 000 of a million contracts. With the status
-- after the party, each (party, status) or (status) is one range already in list order: a filtered page is
-- read in order and stops after the page (the cursor's keyset included), and an unfiltered one merges the
-- newest of each status (contract-store.ts), so the same number of indexes serves every list. The new
-- indexes are built before the old ones go, so no moment lacks one. Every statement can run again.
CREATE INDEX IF NOT EXISTS contracts_provider_status_newest
  ON contracts (provider_id, status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS contracts_consumer_status_newest
  ON contracts (consumer_id, status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS contracts_status_newest ON contracts (status, created_at DESC, id DESC);
DROP INDEX IF EXISTS contracts_provider_newest;
DROP INDEX IF EXISTS contracts_consumer_newest;
DROP INDEX IF EXISTS contracts_newest;
