-- Possible duplicates that wait for a person: listed by the dedupe step of each run, decided with
-- `python -m import_pipelines review accept|reject`. A decision is remembered for the pair: an
-- accepted pair merges on the next run, a rejected one never does.
CREATE TABLE IF NOT EXISTS import_control.review_pairs (
    review_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile         text NOT NULL,
    entity          text NOT NULL,
    source_id       text NOT NULL,  -- the record held back for review
    candidate_kind  text NOT NULL CHECK (candidate_kind IN ('source', 'target')),
    candidate       text NOT NULL,  -- a source id of the same import, or a target row's primary key
    confidence      real NOT NULL,
    match_fields    jsonb,          -- per field: its comparison level and its evidence in bits
    run_id          text NOT NULL,  -- the last run that listed the pair
    decision        text CHECK (decision IN ('accepted', 'rejected')),
    decided_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (profile, entity, source_id, candidate_kind, candidate)
);
CREATE INDEX IF NOT EXISTS review_pairs_open ON import_control.review_pairs (profile, entity) WHERE decision IS NULL;
