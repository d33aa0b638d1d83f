"""Dagster resources: the source and target database connections of a profile."""

from __future__ import annotations

import dagster as dg


class PostgresDatabase(dg.ConfigurableResource):
    """A PostgreSQL database reached by URL (a libpq URL or conninfo string).

    Bind the URL with ``dg.EnvVar`` so it never appears in run config, logs or metadata. Source
    databases are only ever opened read-only by the extract step.
    """

    url: str

    def connection_url(self) -> str:
        """The URL to open with :func:`import_pipelines.db.connect`."""
        return self.url

    def check_connection(self, *, timeout: int = 5):
        """Reachability, server version, read-only state and what the role may read.

        Returns an :class:`import_pipelines.authoring.connection.ConnectionReport`; it names the
        server as ``user@host:port/dbname``, never with the password.
        """
        from import_pipelines.authoring.connection import check_connection

        return check_connection(self.url, timeout=timeout)


class ImportRunSettings(dg.ConfigurableResource):
    """Per-run switches of a profile's import job, set in the launchpad's run config.

    ``dry_run``: extract, map and dedupe as usual, then predict what load would do for every
    record (would create / update / skip / fail, with duplicates) without writing to the target
    tables; the prediction is the materialisation metadata and a CSV report.

    ``full_refresh``: read every record in full, instead of a sync's key pass that reads only the
    new and changed ones.

    ``source_path``: the file a records profile reads in this run (a folder sensor sets it); it
    replaces the path of the profile's ``source``.
    """

    dry_run: bool = False
    full_refresh: bool = False
    source_path: str | None = None
