-- The control schema as it stood before numbered migrations: idempotent, so a database made
-- before them runs it again harmlessly.
CREATE SCHEMA IF NOT EXISTS import_control;

-- time-ordered UUIDs (version 7 layout): audit rows arrive in order, so the primary key index
-- grows at its right edge instead of touching a random page per row as gen_random_uuid() does
CREATE OR REPLACE FUNCTION import_control.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
           substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
           FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

CREATE TABLE IF NOT EXISTS import_control.import_records (
    record_id     uuid PRIMARY KEY DEFAULT import_control.uuid_v7(),
    run_id        text NOT NULL,
    profile       text NOT NULL,
    entity        text NOT NULL,
    source_table  text,
    source_id     text,
    source_hash   text,
    target_table  text,
    target_id     text,
    action        text NOT NULL CHECK (action IN ('created', 'updated', 'skipped', 'unchanged', 'failed', 'rolled_back')),
    duplicate_of  text,     -- source id of the record this one was deduplicated into (same batch)
    confidence    real,     -- 0-100: of that duplicate, or of the match to an existing target row (target_id)
    match_fields  jsonb,    -- per-field similarity scores of the match
    error         text,
    before_image  jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS import_records_run ON import_control.import_records (run_id, entity);
-- no index by source id: every audit row would pay for it (about 8% of the merge statement on the benchmark), and
-- record_state already finds a source record's last import by its primary key
DROP INDEX IF EXISTS import_control.import_records_source;

-- references deferred during load (self references, cycles), resolved by late_seed
CREATE TABLE IF NOT EXISTS import_control.pending_references (
    run_id        text NOT NULL,
    profile       text NOT NULL,
    entity        text NOT NULL,
    source_id     text NOT NULL,
    target_id     text NOT NULL,
    column_name   text NOT NULL,
    ref_entity    text NOT NULL,
    ref_key       text NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_references_run ON import_control.pending_references (run_id, profile, entity);

-- problems found after a record was loaded (an unresolvable late reference)
CREATE TABLE IF NOT EXISTS import_control.import_errors (
    error_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        text NOT NULL,
    profile       text NOT NULL,
    entity        text NOT NULL,
    source_id     text,
    stage         text NOT NULL,
    field         text,
    message       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS import_errors_run ON import_control.import_errors (run_id, entity);

-- what a dry run predicts for each source record (the target tables stay untouched)
CREATE TABLE IF NOT EXISTS import_control.dry_run_records (
    run_id        text NOT NULL,
    profile       text NOT NULL,
    entity        text NOT NULL,
    source_id     text NOT NULL,
    action        text NOT NULL,
    target_id     text,
    duplicate_of  text,
    confidence    real,
    error         text,
    resolves      boolean NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dry_run_records_key ON import_control.dry_run_records (run_id, profile, entity, source_id);

-- the key compares bytes (COLLATE "C"): it is probed and extended once per imported record, and
-- a locale-aware comparison cost the tickets' merge about 5% of its time for an order nobody reads
CREATE TABLE IF NOT EXISTS import_control.record_state (
    profile       text COLLATE "C" NOT NULL,
    entity        text COLLATE "C" NOT NULL,
    source_id     text COLLATE "C" NOT NULL,
    target_table  text NOT NULL,
    target_id     text,
    source_hash   text NOT NULL,
    run_id        text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile, entity, source_id)
);
DO $$
BEGIN  -- a record_state made before its key was byte-ordered
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'import_control.record_state'::regclass
               AND attname = 'source_id' AND attcollation <> (SELECT oid FROM pg_collation WHERE collname = 'C')) THEN
        ALTER TABLE import_control.record_state ALTER COLUMN profile TYPE text COLLATE "C",
            ALTER COLUMN entity TYPE text COLLATE "C", ALTER COLUMN source_id TYPE text COLLATE "C";
    END IF;
END $$;
