"""Dagster instance storage: dagster-postgres, on the project's own database resolution.

``dagster.yaml`` names this class instead of ``storage: postgres: postgres_url: {env: ...}``
because Dagster refuses to load an instance whose ``env`` source is unset: with this class a
bare ``dagster dev`` or ``dagster definitions validate`` in the project root works too, on
``IMPORT_PIPELINES_DAGSTER_PG_URL`` when it is set and on the embedded server when it is not.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage


class ProjectPostgresStorage(DagsterPostgresStorage):
    """Run, event-log and schedule storage in PostgreSQL (a ``postgresql+psycopg2://`` URL)."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        """``postgres_url`` is optional: without it the project's settings decide."""
        return {"postgres_url": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: dict[str, Any]) -> ProjectPostgresStorage:
        """Build the storage from ``dagster.yaml``'s config (usually empty)."""
        from import_pipelines.settings import ensure_environment

        url = config_value.get("postgres_url") or ensure_environment().dagster
        return cls(postgres_url=url, inst_data=inst_data)
