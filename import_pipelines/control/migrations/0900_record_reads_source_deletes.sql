-- One read of a record source (an Airtable table, an HTTP API, a file) per run and entity: the raw
-- records it staged, shared by every entity of the template that is derived from the same records,
-- and what the read found out (its lower bound, its high-water mark, whether it was complete). The
-- sync cursor advances from here once every entity fed by the read has loaded it.
CREATE TABLE import_control.record_reads (
    run_id        text NOT NULL,
    profile       text COLLATE "C" NOT NULL,
    entity        text COLLATE "C" NOT NULL,   -- the entity whose records these are (the read's owner)
    scope         text NOT NULL,               -- who else must not read at the same time (an Airtable base)
    raw_table     text NOT NULL,               -- in import_control, dropped once every consumer has loaded
    source        text NOT NULL,               -- the source's name, no secrets
    since         timestamptz,                 -- the lower bound asked of the source; NULL for a full read
    max_modified  timestamptz,                 -- the greatest modification time read: the next mark
    complete      boolean NOT NULL,            -- a full read of the whole source that reached its end
    records       bigint NOT NULL,
    consumers     text[] NOT NULL,             -- the entities fed by this read
    loaded        text[] NOT NULL DEFAULT '{}',
    mapping       jsonb NOT NULL,              -- input -> where it was read, custom columns, how decided
    report        jsonb,                       -- requests, waits after 429s, retries, seconds
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, profile, entity)
);
CREATE INDEX record_reads_scope ON import_control.record_reads (scope, finished_at);

-- Records a complete read no longer found: per run and stream, the source ids whose last import
-- (record_state) the read did not see again, waiting for the profile's rule (leave, deactivate,
-- delete) to be applied once every entity has loaded.
CREATE TABLE import_control.source_gone (
    run_seq    bigint NOT NULL,
    stream_id  integer NOT NULL,
    source_id  text COLLATE "C" NOT NULL,
    target_id  text,
    PRIMARY KEY (stream_id, source_id)
);

-- what was done to a target row whose source record disappeared: audited like every other action,
-- the before-image kept, so a rollback can restore it
ALTER TABLE import_control.audit_records DROP CONSTRAINT IF EXISTS audit_records_action_check;
ALTER TABLE import_control.audit_records ADD CONSTRAINT audit_records_action_check CHECK (action IN (
    'created', 'updated', 'skipped', 'unchanged', 'failed', 'rolled_back', 'deactivated', 'deleted'));
