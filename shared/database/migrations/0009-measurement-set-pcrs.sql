-- A measurement set may pin PCRs beyond PCR0/1/2/8: `additional_pcrs` maps a decimal index to 96 lower-case
-- hex digits. Existing sets pin none ('{}'), and their signed payload is unchanged (it names the object only
-- when it is not empty). Every statement can run again (the Data API commits DDL statement by statement;
-- see migrate.ts).

-- The same rule as the proposal schema (shared/domain/measurement-set.ts): indexes 3, 5-7 and 9-31 in
-- decimal without leading zeros (0/1/2/8 have their own columns; PCR4, the parent instance, is pinned by
-- the platform per instance), each value a string of 96 lower-case hex digits. Distinct keys from that
-- list bound the object to 27 entries.
ALTER TABLE measurement_sets ADD COLUMN IF NOT EXISTS additional_pcrs jsonb NOT NULL DEFAULT '{}'::jsonb
  CONSTRAINT measurement_sets_additional_pcrs_check CHECK (
    jsonb_typeof(additional_pcrs) = 'object'
    AND NOT jsonb_path_exists(additional_pcrs, '$.keyvalue() ? (@.value.type() != "string"
      || !(@.key like_regex "^(3|5|6|7|9|[12][0-9]|3[01])$")
      || !(@.value like_regex "^[0-9a-f]{96}$"))')
  );

-- One row per distinct set and contract, the additional pins included: the same PCR0/1/2/8 with other
-- pins is another set. The index holds a digest of the object, not the object: 27 pins take about 2.9 KB,
-- over a B-tree entry's 2704-byte maximum. jsonb's text is one canonical form (keys sorted, fixed spacing),
-- so equal objects in any key order have one digest; it holds only digits, hex, quotes and punctuation (the
-- check above), so reading it as bytea changes nothing (and, unlike convert_to, the cast is immutable).
-- The new index is built before the old one is dropped, so no moment lacks a uniqueness index.
CREATE UNIQUE INDEX IF NOT EXISTS measurement_sets_distinct_pins
  ON measurement_sets (contract_id, pcr0, pcr1, pcr2, coalesce(pcr8, ''), sha256(additional_pcrs::text::bytea));
DROP INDEX IF EXISTS measurement_sets_distinct;
