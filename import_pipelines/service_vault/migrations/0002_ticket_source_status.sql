-- The status value of the source system as it was, beside the mapped one: FreeScout modules add
-- custom statuses (11, 21, 31, ...) that map to a main status and would otherwise be lost.
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS source_status integer;
