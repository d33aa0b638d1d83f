-- How long each profile keeps its per-record audit (run summaries are kept for ever); every run
-- records its profile's setting here, so the retention job knows it without the code location.
CREATE TABLE import_control.profiles (
    profile         text PRIMARY KEY,
    retention_days  integer NOT NULL DEFAULT 90 CHECK (retention_days > 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO import_control.profiles (profile) SELECT DISTINCT profile FROM import_control.runs
ON CONFLICT DO NOTHING;
