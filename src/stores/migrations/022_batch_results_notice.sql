-- Tongban-Data-Notice of a batch item (docs/disputes.md): the header its answer would have
-- carried as a single query, kept with the result so the results stream can show it.
ALTER TABLE batch_results ADD COLUMN data_notice text;
