"""The ``import_control`` schema this project owns inside every target database.

- ``import_records``: one audit row per source record per run (append-only).
- ``record_state``: the last successful import of each source record (its hash and target
  id); a source row whose hash equals the stored one is ``unchanged`` and causes no write.
- ``pending_references``, ``import_errors``, ``dry_run_records``: see the migrations.
"""

from __future__ import annotations

from typing import Literal

from import_pipelines.control.schema import CONTROL_SCHEMA, ensure_control_schema, migrations

Action = Literal["created", "updated", "skipped", "unchanged", "failed", "rolled_back"]
ACTIONS: tuple[Action, ...] = ("created", "updated", "skipped", "unchanged", "failed", "rolled_back")

__all__ = ["ACTIONS", "CONTROL_SCHEMA", "Action", "ensure_control_schema", "migrations"]
