-- How many measurement sets each contract holds, kept on the contract's row. A proposal takes a place by a
-- conditional UPDATE of this count, which PostgreSQL re-checks against the row's latest version when
-- proposals race; a count(*) read in the same statement sees its snapshot only, so a burst of parallel
-- proposals would overshoot the cap (50 sets, so that listing them stays within the Data API's 1 MiB).
-- Every statement can run again: the count is recomputed from the sets.
ALTER TABLE contracts ADD COLUMN IF NOT EXISTS measurement_sets_held integer NOT NULL DEFAULT 0;

UPDATE contracts AS c
SET measurement_sets_held = (SELECT count(*) FROM measurement_sets AS m WHERE m.contract_id = c.id)
WHERE measurement_sets_held <> (SELECT count(*) FROM measurement_sets AS m WHERE m.contract_id = c.id);
