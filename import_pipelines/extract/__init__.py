"""Extract: read source records into a staging table in the target database."""
