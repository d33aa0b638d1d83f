"""High-water marks of incremental reads, in ``import_control.sync_cursors``.

An incremental entity (an Airtable table, an HTTP API with an ``updated_since`` parameter) reads
only what changed after its mark, less a look-back window. The mark moves only when a run has
committed what it read: :func:`advance_cursor` belongs after the run's last write, best inside
that same transaction, so the data and the mark commit or roll back together. A run that fails
leaves the mark where it was, and the next run reads the same changes again (the source hash
makes the overlap harmless). The mark never moves backwards: a read that saw only older
modification times (a full refresh of an unchanged source, a look-back overlap) leaves it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """The mark of one profile's entity: the greatest source modification time a committed run read."""

    profile: str
    entity: str
    high_water_mark: datetime
    run_id: str  # the run that set it
    updated_at: datetime


def read_cursor(conn: psycopg.Connection, *, profile: str, entity: str) -> SyncCursor | None:
    """The entity's mark, or None before its first committed incremental run."""
    row = conn.execute("SELECT profile, entity, high_water_mark, run_id, updated_at FROM import_control.sync_cursors"
                       " WHERE profile = %s AND entity = %s", (profile, entity)).fetchone()
    return SyncCursor(*row) if row else None


def advance_cursor(conn: psycopg.Connection, *, profile: str, entity: str, mark: datetime,
                   run_id: str) -> SyncCursor:
    """Record that run ``run_id`` committed what it read up to ``mark``; call only once the run committed.

    The mark moves forward only (a lower ``mark`` leaves the stored one, and its run, as they were).
    Inside an open transaction this is part of it, so calling it with the run's last batch makes
    the mark commit exactly when the data does. Returns the cursor as it now stands.
    """
    if mark.tzinfo is None:
        raise ValueError(f"high-water mark {mark.isoformat()} has no time zone; it must be an instant")
    with conn.transaction():
        conn.execute(
            "INSERT INTO import_control.sync_cursors AS c (profile, entity, high_water_mark, run_id)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (profile, entity) DO UPDATE"
            " SET high_water_mark = EXCLUDED.high_water_mark, run_id = EXCLUDED.run_id, updated_at = now()"
            " WHERE c.high_water_mark < EXCLUDED.high_water_mark",
            (profile, entity, mark, run_id))
        cursor = read_cursor(conn, profile=profile, entity=entity)
    assert cursor is not None
    return cursor


def reset_cursor(conn: psycopg.Connection, *, profile: str, entity: str) -> bool:
    """Forget the entity's mark (its next incremental run reads everything); True if there was one."""
    with conn.transaction():
        deleted = conn.execute("DELETE FROM import_control.sync_cursors WHERE profile = %s AND entity = %s",
                               (profile, entity)).rowcount
    return deleted > 0
