-- Runs and streams get small integer ids; the per-record audit keeps what a run did to the target
-- (created, updated, skipped, failed, rolled back), partitioned by the day its run started, and a
-- run's unchanged records are counted in its summary instead of one row each.

-- one row per run that imported something; re-executions of a failed run share its run_group
CREATE TABLE import_control.runs (
    run_seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL UNIQUE,
    run_group   text NOT NULL,
    profile     text NOT NULL,
    run_day     date NOT NULL DEFAULT current_date,
    started_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_group ON import_control.runs (run_group);

-- one row per (profile, entity): a template entity, a mirrored table
CREATE TABLE import_control.streams (
    stream_id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile       text COLLATE "C" NOT NULL,
    entity        text COLLATE "C" NOT NULL,
    target_table  text NOT NULL,
    source        text,
    UNIQUE (profile, entity)
);

-- what one run did to one stream, unchanged records included: the reconciliation's other side
CREATE TABLE import_control.run_summaries (
    run_seq      bigint NOT NULL REFERENCES import_control.runs ON DELETE CASCADE,
    stream_id    integer NOT NULL REFERENCES import_control.streams,
    source_rows  bigint NOT NULL,
    created      bigint NOT NULL DEFAULT 0,
    updated      bigint NOT NULL DEFAULT 0,
    unchanged    bigint NOT NULL DEFAULT 0,
    skipped      bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    seconds      double precision,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_seq, stream_id)
);

-- the per-record audit, partitioned by the day the run started (import_control.audit_partition()
-- creates a day's partition; retention drops whole partitions). No primary key: a record is
-- (run_seq, stream_id, record_no), and rows arrive in run order, so a BRIN index on run_seq finds
-- a run's records for the price of a few bytes per block instead of an index entry per row.
CREATE TABLE import_control.audit_records (
    run_seq       bigint NOT NULL,
    stream_id     integer NOT NULL,
    record_no     bigint NOT NULL,
    action        text NOT NULL CHECK (action IN ('created', 'updated', 'skipped', 'unchanged', 'failed', 'rolled_back')),
    source_id     text,
    source_ref    text,
    source_hash   bytea,
    target_id     text,
    duplicate_of  text,
    confidence    real,
    match_fields  jsonb,
    error         text,
    before_image  jsonb,
    run_day       date NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (run_day);
CREATE INDEX audit_records_run ON import_control.audit_records USING brin (run_seq, stream_id);

CREATE FUNCTION import_control.audit_partition(day date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    name text := 'audit_records_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass('import_control.' || name) IS NULL THEN
        EXECUTE format('CREATE TABLE import_control.%I PARTITION OF import_control.audit_records'
                       ' FOR VALUES FROM (%L) TO (%L)', name, day, day + 1);
    END IF;
    RETURN name;
END $$;

-- the last import of each source record: its hash and the target row it became; a duplicate
-- names the record it was deduplicated into and follows its survivor's row
ALTER TABLE import_control.record_state RENAME TO record_state_v1;
CREATE TABLE import_control.record_state (
    stream_id     integer NOT NULL,
    source_id     text COLLATE "C" NOT NULL,
    target_id     text,
    source_hash   bytea,
    duplicate_of  text,
    run_seq       bigint NOT NULL,
    PRIMARY KEY (stream_id, source_id)
);

-- references deferred during load (cycles, self references), resolved by late_seed; they belong
-- to the run group, so a re-execution of a failed run resolves what its first attempt deferred
DROP TABLE import_control.pending_references;
CREATE TABLE import_control.pending_references (
    run_group    text NOT NULL,
    stream_id    integer NOT NULL,
    reference    text NOT NULL,
    row_key      text[] NOT NULL,
    atoms        text[] NOT NULL,
    source_id    text,
    created      boolean NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_references_group ON import_control.pending_references (run_group, stream_id, reference);

-- what was recorded before: runs, streams, audit rows and states carried over
INSERT INTO import_control.runs (run_id, run_group, profile, run_day, started_at)
SELECT run_id, run_id, min(profile), min(created_at)::date, min(created_at)
FROM import_control.import_records GROUP BY run_id ORDER BY min(created_at);
INSERT INTO import_control.streams (profile, entity, target_table, source)
SELECT profile, entity, min(target_table), min(source_table) FROM (
    SELECT profile, entity, target_table, source_table FROM import_control.import_records
    UNION ALL SELECT profile, entity, target_table, NULL FROM import_control.record_state_v1) AS s
GROUP BY profile, entity;
SELECT import_control.audit_partition(d) FROM (SELECT DISTINCT run_day AS d FROM import_control.runs) AS days;
INSERT INTO import_control.audit_records (run_seq, stream_id, record_no, action, source_id, source_hash, target_id,
    duplicate_of, confidence, match_fields, error, before_image, run_day, recorded_at)
SELECT r.run_seq, s.stream_id, row_number() OVER (PARTITION BY r.run_seq, s.stream_id ORDER BY i.created_at),
       i.action, i.source_id, CASE WHEN i.source_hash ~ '^([0-9a-f]{2})+$' THEN decode(i.source_hash, 'hex') END,
       i.target_id, i.duplicate_of, i.confidence, i.match_fields, i.error, i.before_image, r.run_day, i.created_at
FROM import_control.import_records AS i JOIN import_control.runs AS r USING (run_id)
JOIN import_control.streams AS s ON s.profile = i.profile AND s.entity = i.entity
WHERE i.action <> 'unchanged';
INSERT INTO import_control.run_summaries (run_seq, stream_id, source_rows, created, updated, unchanged, skipped, failed)
SELECT r.run_seq, s.stream_id, count(*), count(*) FILTER (WHERE action = 'created'),
       count(*) FILTER (WHERE action = 'updated'), count(*) FILTER (WHERE action = 'unchanged'),
       count(*) FILTER (WHERE action = 'skipped'), count(*) FILTER (WHERE action = 'failed')
FROM import_control.import_records AS i JOIN import_control.runs AS r USING (run_id)
JOIN import_control.streams AS s ON s.profile = i.profile AND s.entity = i.entity
GROUP BY r.run_seq, s.stream_id;
INSERT INTO import_control.record_state (stream_id, source_id, target_id, source_hash, run_seq)
SELECT s.stream_id, v.source_id, v.target_id,
       CASE WHEN v.source_hash ~ '^([0-9a-f]{2})+$' THEN decode(v.source_hash, 'hex') END,
       coalesce((SELECT r.run_seq FROM import_control.runs AS r WHERE r.run_id = v.run_id), 0)
FROM import_control.record_state_v1 AS v JOIN import_control.streams AS s USING (profile, entity);
DROP TABLE import_control.record_state_v1;
DROP TABLE import_control.import_records;

-- the audit as people read it: names instead of ids
CREATE VIEW import_control.import_records AS
SELECT r.run_id, st.profile, st.entity, st.source AS source_table, a.source_id, a.source_ref,
       encode(a.source_hash, 'hex') AS source_hash, st.target_table, a.target_id, a.action, a.duplicate_of,
       a.confidence, a.match_fields, a.error, a.before_image, a.recorded_at AS created_at,
       a.run_seq, a.stream_id, a.record_no, r.run_group
FROM import_control.audit_records AS a
JOIN import_control.runs AS r ON r.run_seq = a.run_seq
JOIN import_control.streams AS st ON st.stream_id = a.stream_id;

-- every staging table with the run that made it, so those of a run that died are swept
CREATE TABLE import_control.staging_tables (
    name        text PRIMARY KEY,
    run_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
