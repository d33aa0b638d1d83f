-- accepted field mappings, reused when a source with the same headers comes again
CREATE TABLE IF NOT EXISTS import_control.mapping_presets (
    preset_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    template      text NOT NULL,
    fingerprint   text NOT NULL,     -- sha256 of the normalised, sorted headers
    headers       jsonb NOT NULL,    -- the headers as they were when saved, in source order
    mapping       jsonb NOT NULL,    -- [{"header", "normalized", "field"}] in source order; field null = not imported
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (template, fingerprint)
);
