"""Staging tables: one UNLOGGED table per stream and run in ``import_control``, the engine's input.

Every source lands its rows here in the same layout — the stream's own columns, then the
engine's slots — so everything after staging is the same whatever the source:

| slot | meaning |
|---|---|
| ``_rn`` | row number, the unit of batches (ranges of it) and of audit ``record_no`` |
| ``_hash`` | the source's hash of the record, compared with ``record_state`` |
| ``_source_ref`` | where the record came from, for people: a file and line, a sheet cell, an API record |
| ``_error`` | why the record cannot load (source, map and validation steps); it is recorded as failed |
| ``_dup_of`` | the source id of the record this one duplicates (it is skipped) |
| ``_hold`` | why the record waits (a possible duplicate under review): it is skipped with that reason |
| ``_match_tid`` | the key of an existing target row this record was matched to |
| ``_confidence``, ``_match`` | the duplicate or match confidence (0-100) and its per-field scores |

Staging tables are registered in ``import_control.staging_tables`` with their run, so those of a
run that died (a killed worker never drops them, and they hold copies of source data) are swept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.sql import SCRATCH_TABLE, ident

SLOTS = ("_hash bytea, _source_ref text, _error text, _dup_of text, _hold text, _match_tid text, _confidence real,"
         " _match jsonb")


def staging_name(profile: str, entity: str, run_id: str) -> str:
    """The staging table of one stream in one run (inside ``import_control``; at most 63 bytes)."""
    return f"stg_{profile}_{entity}_{run_id.replace('-', '')[:12]}"[:63]


def create_staging(conn: psycopg.Connection, *, table: str, columns: Sequence[tuple[str, str]], run_id: str,
                   temporary: bool = False, slots: bool = True) -> None:
    """(Re)create ``import_control.<table>`` with ``columns`` (name, type) and the engine's slots.

    ``temporary`` makes it ``pg_temp.<table>``, the session's own, unregistered: what a preview
    stages, gone with its session and never seen by another. Without ``slots`` it is a scratch
    table of the run with just ``columns`` (a sync's keys); not TEMP: parallel workers can scan it.
    """
    name = ident("pg_temp" if temporary else CONTROL_SCHEMA, table)
    body = [sql.SQL("{} {}").format(ident(column), sql.SQL(kind)) for column, kind in columns]
    if slots:
        body = [sql.SQL("_rn bigint GENERATED ALWAYS AS IDENTITY"), *body, sql.SQL(SLOTS)]
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
    conn.execute(sql.SQL("CREATE {} TABLE {} ({}){}").format(
        sql.SQL("TEMP" if temporary else "UNLOGGED"), name, sql.SQL(", ").join(body), SCRATCH_TABLE))
    if not temporary:
        conn.execute("INSERT INTO import_control.staging_tables (name, run_id) VALUES (%s, %s)"
                     " ON CONFLICT (name) DO UPDATE SET run_id = EXCLUDED.run_id, created_at = now()", (table, run_id))


def index_staging(conn: psycopg.Connection, table: str) -> None:
    """Index the row numbers batches are cut by, and give the planner statistics."""
    name = ident(CONTROL_SCHEMA, table)
    conn.execute(sql.SQL("CREATE INDEX ON {} (_rn)").format(name))
    conn.execute(sql.SQL("ANALYZE {}").format(name))


def drop_staging(conn: psycopg.Connection, table: str) -> None:
    """Drop one staging table and its registration."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(CONTROL_SCHEMA, table)))
    conn.execute("DELETE FROM import_control.staging_tables WHERE name = %s", (table,))


def sweep_staging(conn: psycopg.Connection, *, dead: Callable[[str, str | None, float], bool],
                  dry_run: bool = False) -> list[str]:
    """Drop the registered staging tables whose run is over: ``dead(run_id, run_group, age_hours)``.

    ``run_group`` is the run the table's run re-executes (None for a run never registered in
    ``import_control.runs``). With ``dry_run`` nothing is dropped. Returns the (would-be) dropped names.
    Commits: never inside a ``conn.transaction()`` block.
    """
    rows = conn.execute("SELECT s.name, s.run_id, r.run_group, extract(epoch FROM now() - s.created_at) / 3600"
                        " FROM import_control.staging_tables AS s LEFT JOIN import_control.runs AS r USING (run_id)"
                        " ORDER BY s.created_at, s.name").fetchall()
    dropped = [name for name, run_id, group, age in rows if dead(run_id, group, float(age))]
    if not dry_run:
        for name in dropped:
            drop_staging(conn, name)
    conn.commit()
    return dropped
