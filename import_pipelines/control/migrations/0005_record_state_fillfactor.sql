-- A sync rewrites the state of every record it updates with a new hash and run, none of them
-- indexed columns: with room left on each page the new version goes on the same page as a HOT
-- update, with no new entry in the primary key. New pages keep a fifth free for that.
ALTER TABLE import_control.record_state SET (fillfactor = 80);
