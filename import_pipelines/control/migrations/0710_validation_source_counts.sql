-- what the validate step found per expectation (the asset check's summary), and how many rows each
-- entity's source query returned, counted on the source in the snapshot its extract read
-- (the reconciliation's first side)
CREATE TABLE IF NOT EXISTS import_control.validation_results (
    run_seq      bigint NOT NULL REFERENCES import_control.runs ON DELETE CASCADE,
    stream_id    integer NOT NULL REFERENCES import_control.streams,
    position     integer NOT NULL,   -- the expectation's index in the entity's validate list
    expectation  text NOT NULL,
    fields       text[] NOT NULL,
    engine       text NOT NULL CHECK (engine IN ('sql', 'great_expectations')),
    evaluated    bigint NOT NULL,
    failed       bigint NOT NULL,
    seconds      double precision,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_seq, stream_id, position)
);

CREATE TABLE IF NOT EXISTS import_control.source_counts (
    run_seq      bigint NOT NULL REFERENCES import_control.runs ON DELETE CASCADE,
    stream_id    integer NOT NULL REFERENCES import_control.streams,
    source_rows  bigint NOT NULL,
    how          text NOT NULL,      -- 'snapshot': count(*) in the extract's transaction; 'read': records read
    counted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_seq, stream_id)
);
