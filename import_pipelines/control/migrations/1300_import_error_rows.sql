-- Rejected rows, one row per problem (stage 'row'): where the record came from (a file and line,
-- a sheet and row, a push and item), its row number, the type of the error and the record's
-- staged values, so a person can fix the source and see what was refused without the file.
ALTER TABLE import_control.import_errors
    ADD COLUMN IF NOT EXISTS source_ref  text,
    ADD COLUMN IF NOT EXISTS row_number  bigint,
    ADD COLUMN IF NOT EXISTS error_type  text,
    ADD COLUMN IF NOT EXISTS row_data    jsonb;
