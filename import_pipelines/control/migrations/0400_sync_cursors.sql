-- high-water marks of incremental reads (Airtable, HTTP APIs): one per profile and entity, moved
-- forward only by a run that committed, in the same transaction as its last write
CREATE TABLE IF NOT EXISTS import_control.sync_cursors (
    profile          text COLLATE "C" NOT NULL,
    entity           text COLLATE "C" NOT NULL,
    high_water_mark  timestamptz NOT NULL,  -- the greatest source modification time the run read
    run_id           text NOT NULL,         -- the run that set it
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile, entity)
);
