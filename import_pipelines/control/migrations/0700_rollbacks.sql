-- A rollback undoes one run: the run whose records it undid is marked on them (rolled_back_by: the
-- rollback's own run_seq), and the rollback, a run of its own, writes a 'rolled_back' audit row per
-- target row it deleted, restored or put back, with that row's image before the rollback.
ALTER TABLE import_control.audit_records ADD COLUMN IF NOT EXISTS rolled_back_by bigint;
