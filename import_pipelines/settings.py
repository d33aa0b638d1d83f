"""Where the project's databases are: environment variables first, the embedded server last.

| variable | meaning |
|---|---|
| ``IMPORT_PIPELINES_SOURCE_URL`` | the demo source database (FreeScout shape) |
| ``IMPORT_PIPELINES_TARGET_URL`` | the target database (Service Vault) |
| ``IMPORT_PIPELINES_DAGSTER_PG_URL`` | Dagster's run, event and schedule storage |
| ``IMPORT_PIPELINES_PG_URL`` | a server on which the three databases above are created when their own URLs are unset |
| ``IMPORT_PIPELINES_DATA_DIR`` | the local data folder (embedded server, error reports); default ``.data`` in the project root |

With none of them set, :func:`ensure_environment` starts the embedded PostgreSQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from import_pipelines.db.connect import ensure_database, sqlalchemy_url

SOURCE_URL_ENV = "IMPORT_PIPELINES_SOURCE_URL"
TARGET_URL_ENV = "IMPORT_PIPELINES_TARGET_URL"
DAGSTER_URL_ENV = "IMPORT_PIPELINES_DAGSTER_PG_URL"
SERVER_URL_ENV = "IMPORT_PIPELINES_PG_URL"
DATA_DIR_ENV = "IMPORT_PIPELINES_DATA_DIR"

DEMO_SOURCE_DB = "freescout_demo"
TARGET_DB = "service_vault"
DAGSTER_DB = "dagster"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DatabaseUrls:
    """The three connection URLs the project runs with."""

    source: str
    target: str
    dagster: str


def data_dir() -> Path:
    """The local data folder (created on demand)."""
    path = Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / ".data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def server_url(embedded_folder: str = "postgres") -> str:
    """The server on which missing databases are created: ``IMPORT_PIPELINES_PG_URL``, else the
    embedded server whose data lives in ``<data dir>/<embedded_folder>`` (benchmarks use their own)."""
    configured = os.environ.get(SERVER_URL_ENV)
    if configured:
        return configured
    from import_pipelines.db.embedded import start_embedded_server

    return start_embedded_server(data_dir() / embedded_folder)


def ensure_environment() -> DatabaseUrls:
    """Make sure the three URL variables are set, creating databases where they are not.

    Called by the command line and by the code location on load, so that ``dagster dev``, its
    daemon and every run worker see the same databases.
    """
    wanted = {SOURCE_URL_ENV: DEMO_SOURCE_DB, TARGET_URL_ENV: TARGET_DB, DAGSTER_URL_ENV: DAGSTER_DB}
    missing = {env: db for env, db in wanted.items() if not os.environ.get(env)}
    if missing:
        server = server_url()
        for env, db in missing.items():
            url = ensure_database(server, db)
            os.environ[env] = sqlalchemy_url(url) if env == DAGSTER_URL_ENV else url
    return DatabaseUrls(source=os.environ[SOURCE_URL_ENV], target=os.environ[TARGET_URL_ENV],
                        dagster=os.environ[DAGSTER_URL_ENV])
