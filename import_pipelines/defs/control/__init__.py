"""Jobs that keep the control schema in shape (``control_retention``) and act on what runs did
(``rollback_import_run``, ``retry_failed_records``, ``export_data``)."""
