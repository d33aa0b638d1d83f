"""Rollback of a run: delete what it created, restore what it changed, from its audit.

The audit of a run holds, per target row it touched (``audit_records``):

- ``created``: the new row's key — the rollback deletes the row;
- ``updated`` (a changed record, or a record merged as a duplicate into an existing row) and
  ``deactivated`` (its source record disappeared): the row's before-image — the rollback writes
  it back, every column but the key and computed ones;
- ``deleted`` (its source record disappeared): the row's image — the rollback inserts it again.

Entities are undone in reverse dependency order (a row is deleted after the rows that point at
it), each in one transaction under the advisory lock a load of that entity takes: the template's
order (:func:`import_pipelines.templates.graph.dependency_order`) when the template is given,
else the order of the target's foreign keys between the run's tables. Rows put back
(``deleted``) follow in dependency order afterwards. In a reference cycle no order deletes every
row after the rows pointing at it: first, the nullable reference that closes the cycle (the one
a load defers to the late seed) is emptied in the rows the run created. A NOT NULL cycle, or an
updated row pointing at a created row of a table undone earlier, stops that entity with the
database's message.

A row a later run changed too (a later ``created``, ``updated``, ``deactivated`` or ``deleted``
audit row with the same key in the same table, of a run not rolled back itself) is a conflict:
the rollback refuses and lists them, unless forced (then the run's before-image wins over the
later change). Changes made to the target outside the imports leave no audit and cannot be seen.

The rollback is a run of its own (``runs``): it writes one ``rolled_back`` audit row per row it
deleted, restored or put back, with the row's image before the rollback, and marks the undone
run's audit rows ``rolled_back_by`` its ``run_seq``: a second rollback of the run continues
with the entities not rolled back yet (one stopped by a row it cannot delete), or is refused
when there are none. The state of the undone records (``record_state``: the last hash and the
row it became) is removed, with their pending references, so the next import creates or updates
them again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA, ensure_control_schema
from import_pipelines.db.introspect import describe_schema
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import register_run
from import_pipelines.engine.graph import Edge, dependency_edges, load_order
from import_pipelines.engine.merge import id_text
from import_pipelines.engine.target import TargetTable, target_table
from import_pipelines.pipeline.steps import hash_key

CONTROL = ident(CONTROL_SCHEMA)
UNDONE_ACTIONS = ("created", "updated", "deactivated", "deleted")
# what a later run did to a row that makes undoing this run's change to it a conflict
CHANGING_ACTIONS = ("created", "updated", "deactivated", "deleted")
LISTED_CONFLICTS = 20
SAMPLES = 10  # target ids a dry run shows per entity and action

Log = Callable[[str], None]


class RollbackError(RuntimeError):
    """A rollback that cannot be done; the message says why (and nothing was written)."""


class RollbackRefused(RollbackError):
    """Later runs changed rows this run changed; ``conflicts`` lists them."""

    def __init__(self, message: str, conflicts: list[Conflict]):
        super().__init__(message)
        self.conflicts = conflicts


@dataclass(frozen=True)
class Conflict:
    """A row the rolled-back run changed that a later run changed again."""

    table: str
    target_id: str
    later_run: str
    action: str


@dataclass
class EntityUndo:
    """What the rollback does (or, in a dry run, would do) to one entity's target table."""

    entity: str
    table: str
    deleted: int = 0     # rows the run created, deleted
    restored: int = 0    # rows the run updated or deactivated, set back to their before-image
    reinserted: int = 0  # rows the run deleted, inserted again
    missing: int = 0     # rows the run created or updated that are no longer there
    samples: dict[str, list[str]] = field(default_factory=dict)  # action -> a few target ids


@dataclass
class RollbackOutcome:
    """The rollback of ``run_id``: per entity in the order undone, the conflicts, the rollback's own run."""

    run_id: str
    profile: str
    dry_run: bool
    entities: list[EntityUndo]
    conflicts: list[Conflict]
    rollback_run_id: str | None = None

    def total(self, what: str) -> int:
        """The sum of one count (``deleted``, ``restored``, ``reinserted``, ``missing``) over the entities."""
        return sum(getattr(e, what) for e in self.entities)

    def render_text(self) -> str:
        """Lines for a person: per entity what is (or would be) done, and the conflicts."""
        verb = "would " if self.dry_run else ""
        lines = [f"rollback of run {self.run_id} (profile {self.profile})" + (" - dry run, nothing written"
                                                                             if self.dry_run else "")]
        for e in self.entities:
            lines.append(f"  {e.entity} ({e.table}): {verb}delete {e.deleted:,} created, {verb}restore {e.restored:,}"
                         f" updated, {verb}re-insert {e.reinserted:,} deleted"
                         + (f"; {e.missing:,} rows no longer there" if e.missing else ""))
            for action, ids in e.samples.items():
                lines.append(f"    {action}: {', '.join(ids)}" + (" ..." if len(ids) == SAMPLES else ""))
        if self.conflicts:
            lines.append(f"  rows changed again by later runs ({len(self.conflicts):,}):")
            lines += [f"    {c.table} {c.target_id}: {c.action} by run {c.later_run}"
                      for c in self.conflicts[:LISTED_CONFLICTS]]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Stream:
    stream_id: int
    entity: str
    table: TargetTable


def _run(conn: psycopg.Connection, run_id: str) -> tuple[int, object, str, str]:
    row = conn.execute("SELECT run_seq, run_day, profile, run_group FROM import_control.runs WHERE run_id = %s",
                       (run_id,)).fetchone()
    if row is None:
        raise RollbackError(f"no import run {run_id!r} is recorded in import_control.runs")
    return row


def _streams(conn: psycopg.Connection, run_seq: int, run_day: object) -> list[_Stream]:
    rows = conn.execute(
        "SELECT s.stream_id, s.entity, s.target_table FROM import_control.streams AS s WHERE s.stream_id IN"
        " (SELECT DISTINCT stream_id FROM import_control.audit_records WHERE run_day = %s AND run_seq = %s"
        " AND action = ANY(%s) AND rolled_back_by IS NULL) ORDER BY s.entity",
        (run_day, run_seq, list(UNDONE_ACTIONS))).fetchall()
    described: dict[str, object] = {}
    streams = []
    for stream_id, entity, qualified in rows:
        schema, name = qualified.split(".", 1) if "." in qualified else ("public", qualified)
        if schema not in described:
            described[schema] = describe_schema(conn, schema)
        info = described[schema].tables.get(name)
        if info is None:
            raise RollbackError(f"entity {entity!r}: its target table {schema}.{name} no longer exists")
        streams.append(_Stream(stream_id, entity, target_table(conn, info)))
    return streams


def _foreign_key_order(conn: psycopg.Connection, streams: list[_Stream]) -> tuple[dict[str, int], list[tuple[str, Edge]]]:
    """Each stream table's position in the load order of the target's foreign keys between them, and
    the edges that order defers to break cycles (with their schema)."""
    position: dict[str, int] = {}
    deferred: list[tuple[str, Edge]] = []
    for schema in sorted({s.table.schema for s in streams}):
        tables = sorted({s.table.name for s in streams if s.table.schema == schema})
        order = load_order(tables, dependency_edges(describe_schema(conn, schema), tables=tables))
        position.update({f"{schema}.{table}": i for i, table in enumerate(order.tables)})
        deferred += [(schema, edge) for edge in order.deferred]
    return position, deferred


def _undo_order(conn: psycopg.Connection, streams: list[_Stream], order: Sequence[str] | None) -> list[_Stream]:
    """``streams`` with every referencing table before the table it references."""
    if order is not None:
        rank = {entity: i for i, entity in enumerate(order)}
        unknown = [s.entity for s in streams if s.entity not in rank]
        if unknown:
            raise RollbackError(f"the template has no entity {', '.join(map(repr, unknown))} that the run loaded")
        return sorted(streams, key=lambda s: -rank[s.entity])
    position, _ = _foreign_key_order(conn, streams)
    return sorted(streams, key=lambda s: (-position[s.table.qualified], s.entity))


def _empty_late_references(conn: psycopg.Connection, streams: list[_Stream], params: dict, log: Log) -> None:
    """Set to NULL, in the rows the run created, the nullable references that close a cycle (the edges a
    load defers to the late seed): in a cycle no order deletes every row before the rows it points at."""
    _, deferred = _foreign_key_order(conn, streams)
    for schema, edge in deferred:
        if not edge.nullable:
            continue  # a NOT NULL edge of a cycle: its rows cannot be emptied; the deletion says which
        for stream in streams:
            if (stream.table.schema, stream.table.name) != (schema, edge.table):
                continue
            emptied = conn.execute(sql.SQL(
                "UPDATE {t} AS t SET ({cols}) = ROW({nulls}) FROM ({records}) AS r WHERE {match}"
                " AND ({present})").format(
                t=ident(schema, edge.table), cols=sql.SQL(", ").join(ident(c) for c in edge.columns),
                nulls=sql.SQL(", ").join(sql.SQL("NULL") for _ in edge.columns),
                records=_records(stream, ["created"]), match=_row_match(stream.table, "t", sql.SQL("r.target_id")),
                present=sql.SQL(" OR ").join(sql.SQL("t.{} IS NOT NULL").format(ident(c)) for c in edge.columns)),
                params).rowcount
            if emptied:
                log(f"{stream.entity}: {', '.join(edge.columns)} emptied in {emptied:,} created rows"
                    f" (a reference cycle), so they can be deleted")


def _row_match(table: TargetTable, alias: str, target_id: sql.Composable) -> sql.Composable:
    """``alias`` is the row whose audit key (text) is ``target_id``; by index for a one-column key."""
    if len(table.row_key) == 1:
        return sql.SQL("{} = ({})::{}").format(ident(alias, table.row_key[0]), target_id, sql.SQL(table.key_type()))
    return sql.SQL("{} = {}").format(id_text([ident(alias, c) for c in table.row_key]), target_id)


def _conflicts(conn: psycopg.Connection, run_seq: int, run_day: object, streams: list[_Stream]) -> list[Conflict]:
    """The rows of ``streams`` the run changed that later runs (not rolled back) changed again."""
    if not streams:
        return []
    # the run's rows and the later runs' changes each read once (BRIN on run_seq, partitions from
    # the day before the run's on: a session's time zone decides the day a run is filed under),
    # then hash-joined: joined row by row, the planner probed the whole audit per row
    return [Conflict(*row) for row in conn.execute(
        "WITH mine AS MATERIALIZED (SELECT DISTINCT s.target_table, a.target_id FROM import_control.audit_records AS a"
        "   JOIN import_control.streams AS s ON s.stream_id = a.stream_id WHERE a.run_day = %(day)s"
        "   AND a.run_seq = %(run)s AND a.stream_id = ANY(%(streams)s) AND a.action = ANY(%(undone)s)"
        "   AND a.rolled_back_by IS NULL),"
        " later AS MATERIALIZED (SELECT s.target_table, l.target_id, l.run_seq, l.action, l.record_no"
        "   FROM import_control.audit_records AS l JOIN import_control.streams AS s ON s.stream_id = l.stream_id"
        "   WHERE l.run_day >= %(day)s::date - 1 AND l.run_seq > %(run)s AND l.action = ANY(%(changing)s)"
        "   AND l.rolled_back_by IS NULL AND s.target_table IN (SELECT DISTINCT target_table FROM mine))"
        " SELECT DISTINCT ON (m.target_table, m.target_id, l.run_seq) m.target_table, m.target_id, r.run_id, l.action"
        " FROM mine AS m JOIN later AS l USING (target_table, target_id) JOIN import_control.runs AS r"
        " ON r.run_seq = l.run_seq ORDER BY m.target_table, m.target_id, l.run_seq, l.record_no",
        {"changing": list(CHANGING_ACTIONS), "run": run_seq, "day": run_day,
         "streams": [s.stream_id for s in streams], "undone": list(UNDONE_ACTIONS)}).fetchall()]


def rollback_run(conn: psycopg.Connection, run_id: str, *, dry_run: bool = False, force: bool = False,
                 order: Sequence[str] | None = None, rollback_run_id: str | None = None,
                 log: Log = lambda message: None) -> RollbackOutcome:
    """Undo the run ``run_id`` on the target ``conn`` (see the module's docstring).

    ``order`` is the template's entities in dependency order (default: the target's foreign
    keys); ``rollback_run_id`` names the rollback's own run (default: ``rollback-<uuid>``). ``conn``
    is left in autocommit mode: each entity is a transaction of its own.
    Raises :class:`RollbackRefused` (nothing written) when later runs changed the same rows and
    ``force`` is not set, :class:`RollbackError` for a run that is unknown or already rolled back.
    A dry run writes nothing and returns what would be done, the conflicts included.
    """
    if not conn.autocommit:
        conn.commit()
    conn.autocommit = True
    ensure_control_schema(conn)
    run_seq, run_day, profile, run_group = _run(conn, run_id)
    streams = _undo_order(conn, _streams(conn, run_seq, run_day), order)
    if not streams:
        done = conn.execute("SELECT r.run_id FROM import_control.audit_records AS a JOIN import_control.runs AS r"
                            " ON r.run_seq = a.rolled_back_by WHERE a.run_day = %s AND a.run_seq = %s"
                            " ORDER BY a.rolled_back_by DESC LIMIT 1", (run_day, run_seq)).fetchone()
        if done:
            raise RollbackError(f"run {run_id} was rolled back already (by {done[0]})")
        changed = conn.execute("SELECT coalesce(sum(created + updated), 0) FROM import_control.run_summaries"
                               " WHERE run_seq = %s", (run_seq,)).fetchone()[0]
        if changed:
            raise RollbackError(f"run {run_id} of {run_day} created or updated {changed:,} rows, but its per-record"
                                " audit is gone (past the profile's retention_days): it cannot be rolled back")
        raise RollbackError(f"run {run_id} created, changed or deleted no target rows: nothing to roll back")
    conflicts = _conflicts(conn, run_seq, run_day, streams)
    outcome = RollbackOutcome(run_id=run_id, profile=profile, dry_run=dry_run, entities=[], conflicts=conflicts)
    if conflicts and not force and not dry_run:
        listed = "; ".join(f"{c.table} {c.target_id} ({c.action} by run {c.later_run})"
                           for c in conflicts[:LISTED_CONFLICTS])
        more = f" and {len(conflicts) - LISTED_CONFLICTS:,} more" if len(conflicts) > LISTED_CONFLICTS else ""
        raise RollbackRefused(f"run {run_id} not rolled back: {len(conflicts):,} rows it changed were changed again by"
                              f" later runs: {listed}{more}. Nothing was changed; roll the later runs back first,"
                              f" or force it (their changes to these rows are then lost)", conflicts)
    rollback = None
    if not dry_run:
        rollback = register_run(conn, run_id=rollback_run_id or f"rollback-{uuid.uuid4()}", profile=profile)
        outcome.rollback_run_id = rollback.run_id
    params = {"run": run_seq, "day": run_day, "group": run_group}
    if not dry_run:
        with conn.transaction():
            _empty_late_references(conn, streams, params, log)
    for stream in streams:
        undo = EntityUndo(entity=stream.entity, table=stream.table.qualified)
        outcome.entities.append(undo)
        if dry_run:
            _preview(conn, stream, undo, params)
        else:
            with conn.transaction():
                undone = [e.entity for e in outcome.entities[:-1]]
                _lock(conn, run_id=run_id, profile=profile, stream=stream, run_seq=run_seq, run_day=run_day,
                      force=force, undone=undone)
                _undo(conn, stream, undo, params, rollback_seq=rollback.run_seq, rollback_day=rollback.run_day,
                      undone=undone)
        log(f"{stream.entity}: {'would ' if dry_run else ''}delete {undo.deleted:,} created, restore"
            f" {undo.restored:,} updated" + (f"; {undo.missing:,} rows no longer there" if undo.missing else ""))
    for stream, undo in zip(reversed(streams), reversed(outcome.entities), strict=True):
        if dry_run:
            continue
        with conn.transaction():
            _reinsert(conn, stream, undo, params, rollback_seq=rollback.run_seq, rollback_day=rollback.run_day)
    return outcome


def _lock(conn: psycopg.Connection, *, run_id: str, profile: str, stream: _Stream, run_seq: int, run_day: object,
          force: bool, undone: list[str]) -> None:
    """Take the advisory lock a load of the entity holds (no import writes its rows meanwhile), then
    refuse if a run that loaded the entity since the first check changed rows of the rolled-back run."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (hash_key(profile), hash_key(stream.entity)))
    late = [] if force else _conflicts(conn, run_seq, run_day, [stream])
    if late:
        raise RollbackRefused(
            f"run {run_id}: a run that loaded {stream.entity} while the rollback went on changed {len(late):,} of"
            f" its rows ({', '.join(c.target_id for c in late[:LISTED_CONFLICTS])}); {stream.entity} was left as"
            f" it is" + (f", {', '.join(undone)} rolled back already" if undone else ""), late)


def _records(stream: _Stream, actions: Sequence[str]) -> sql.Composable:
    """The run's undone audit rows of ``stream`` with one of ``actions``, the first per target row."""
    return sql.SQL(
        "SELECT DISTINCT ON (a.target_id) a.target_id, a.source_id, a.before_image, a.action"
        " FROM {}.audit_records AS a WHERE a.run_day = %(day)s AND a.run_seq = %(run)s AND a.stream_id = {}"
        " AND a.action IN ({}) AND a.target_id IS NOT NULL AND a.rolled_back_by IS NULL"
        " ORDER BY a.target_id, a.recorded_at, a.record_no").format(
        CONTROL, sql.Literal(stream.stream_id), sql.SQL(", ").join(sql.Literal(a) for a in actions))


def _preview(conn: psycopg.Connection, stream: _Stream, undo: EntityUndo, params: dict) -> None:
    """Counts and the first target ids of what undoing ``stream`` would do (counted in the database:
    a run of a million rows is not read into memory)."""
    target = ident(stream.table.schema, stream.table.name)
    for action, attribute in (("created", "deleted"), ("updated", "restored"), ("deactivated", "restored"),
                              ("deleted", "reinserted")):
        # a created or updated row is undone if it is still there, a deleted one if it is not
        actionable = sql.SQL("{}EXISTS (SELECT 1 FROM {} AS t WHERE {})").format(
            sql.SQL("NOT ") if action == "deleted" else sql.SQL(""), target,
            _row_match(stream.table, "t", sql.SQL("r.target_id")))
        rows = sql.SQL("SELECT r.target_id, {} AS actionable FROM ({}) AS r").format(
            actionable, _records(stream, [action]))
        done, total = conn.execute(sql.SQL("SELECT count(*) FILTER (WHERE actionable), count(*) FROM ({}) AS q").format(
            rows), params).fetchone()
        setattr(undo, attribute, getattr(undo, attribute) + done)
        undo.missing += total - done if action != "deleted" else 0
        if done:
            undo.samples[action] = [tid for (tid,) in conn.execute(sql.SQL(
                "SELECT target_id FROM ({}) AS q WHERE actionable ORDER BY target_id LIMIT {}").format(
                rows, sql.Literal(SAMPLES)), params)]


def _writable(table: TargetTable) -> list[str]:
    return [c.name for c in table.columns.values() if not c.generated and c.name not in table.row_key]


def _audit_rolled_back(conn: psycopg.Connection, stream: _Stream, *, rows: sql.Composable, reason: str,
                       rollback_seq: int, rollback_day: object, params: dict) -> None:
    """A ``rolled_back`` audit row per row of ``rows`` (``target_id``, ``source_id``, ``image``)."""
    conn.execute(sql.SQL(
        "INSERT INTO {}.audit_records (run_seq, stream_id, record_no, action, source_id, target_id, error,"
        " before_image, run_day) SELECT {}, {}, coalesce((SELECT max(record_no) FROM {}.audit_records"
        " WHERE run_day = {day} AND run_seq = {seq} AND stream_id = {stream}), 0) + row_number() OVER (),"
        " 'rolled_back', x.source_id, x.target_id, {}, x.image, {day} FROM ({}) AS x").format(
        CONTROL, sql.Literal(rollback_seq), sql.Literal(stream.stream_id), CONTROL, sql.Literal(reason), rows,
        day=sql.Literal(rollback_day), seq=sql.Literal(rollback_seq), stream=sql.Literal(stream.stream_id)), params)


def _undo(conn: psycopg.Connection, stream: _Stream, undo: EntityUndo, params: dict, *, rollback_seq: int,
          rollback_day: object, undone: list[str]) -> None:
    table = stream.table
    target = ident(table.schema, table.name)
    run_id = conn.execute("SELECT run_id FROM import_control.runs WHERE run_seq = %s", (params["run"],)).fetchone()[0]
    # rows the run updated or deactivated: their before-image back, every column but the key
    restored = sql.SQL("SELECT r.target_id, r.source_id, to_jsonb(t.*) AS image, r.before_image FROM ({}) AS r"
                       " JOIN {} AS t ON {}").format(_records(stream, ["updated", "deactivated"]), target,
                                                     _row_match(table, "t", sql.SQL("r.target_id")))
    conn.execute(sql.SQL("CREATE TEMP TABLE _restore ON COMMIT DROP AS {}").format(restored), params)
    conn.execute("ANALYZE _restore")  # temporary tables have no statistics until analysed
    _audit_rolled_back(conn, stream, rows=sql.SQL("SELECT target_id, source_id, image FROM _restore"),
                       reason=f"rollback of run {run_id}: the row's value before that run restored",
                       rollback_seq=rollback_seq, rollback_day=rollback_day, params=params)
    columns = _writable(table)
    if columns:
        undo.restored = conn.execute(sql.SQL(
            "UPDATE {t} AS t SET ({cols}) = ROW({values}) FROM _restore AS x,"
            " LATERAL jsonb_populate_record(NULL::{t}, x.before_image) AS b WHERE {match}").format(
            t=target, cols=sql.SQL(", ").join(ident(c) for c in columns),
            # a column added since the run is not in its before-image: it keeps its value
            values=sql.SQL(", ").join(sql.SQL("CASE WHEN x.before_image ? {} THEN b.{} ELSE t.{} END").format(
                sql.Literal(c), ident(c), ident(c)) for c in columns),
            match=_row_match(table, "t", sql.SQL("x.target_id")))).rowcount
    # rows the run created: deleted
    created = sql.SQL("SELECT r.target_id, r.source_id, to_jsonb(t.*) AS image FROM ({}) AS r JOIN {} AS t"
                      " ON {}").format(_records(stream, ["created"]), target,
                                       _row_match(table, "t", sql.SQL("r.target_id")))
    conn.execute(sql.SQL("CREATE TEMP TABLE _remove ON COMMIT DROP AS {}").format(created), params)
    conn.execute("ANALYZE _remove")
    _audit_rolled_back(conn, stream, rows=sql.SQL("SELECT target_id, source_id, image FROM _remove"),
                       reason=f"rollback of run {run_id}: the row it created deleted",
                       rollback_seq=rollback_seq, rollback_day=rollback_day, params=params)
    try:
        undo.deleted = conn.execute(sql.SQL("DELETE FROM {} AS t USING _remove AS x WHERE {}").format(
            target, _row_match(table, "t", sql.SQL("x.target_id")))).rowcount
    except psycopg.errors.ForeignKeyViolation as error:
        raise RollbackError(
            f"{stream.entity}: rows run {run_id} created in {table.qualified} are still referenced by other rows"
            f" ({error.diag.message_detail or error}); nothing of {stream.entity} was rolled back"
            + (f" ({', '.join(undone)} were)" if undone else "") + ". Once those rows are dealt with, the same"
            " rollback again continues with what is left") from None
    expected = conn.execute(sql.SQL("SELECT (SELECT count(*) FROM ({}) AS c), (SELECT count(*) FROM ({}) AS u)").format(
        _records(stream, ["created"]), _records(stream, ["updated", "deactivated"])), params).fetchone()
    undo.missing = expected[0] - undo.deleted + expected[1] - undo.restored
    # the state of the undone records goes, so the next import creates (or updates) them again;
    # joins, not IN (subquery) under an OR, which PostgreSQL cannot turn into a join
    for scratch, only_this_run in (("_remove", sql.SQL("")), ("_restore", sql.SQL(" AND rs.run_seq = %(run)s"))):
        conn.execute(sql.SQL(
            "DELETE FROM {}.record_state AS rs USING {} AS x WHERE rs.stream_id = {} AND rs.target_id = x.target_id{}"
        ).format(CONTROL, ident(scratch), sql.Literal(stream.stream_id), only_this_run), params)
        conn.execute(sql.SQL(
            "DELETE FROM {}.pending_references AS p USING {} AS x WHERE p.run_group = %(group)s AND p.stream_id = {}"
            " AND p.source_id = x.source_id").format(CONTROL, ident(scratch), sql.Literal(stream.stream_id)), params)
    _mark(conn, stream, ["created", "updated", "deactivated"], rollback_seq, params)


def _mark(conn: psycopg.Connection, stream: _Stream, actions: list[str], rollback_seq: int, params: dict) -> None:
    conn.execute(sql.SQL(
        "UPDATE {}.audit_records SET rolled_back_by = {} WHERE run_day = %(day)s AND run_seq = %(run)s"
        " AND stream_id = {} AND action = ANY({})").format(
        CONTROL, sql.Literal(rollback_seq), sql.Literal(stream.stream_id), sql.Literal(actions)), params)


def _reinsert(conn: psycopg.Connection, stream: _Stream, undo: EntityUndo, params: dict, *, rollback_seq: int,
              rollback_day: object) -> None:
    """Insert again the rows the run deleted because their source records had gone."""
    table = stream.table
    target = ident(table.schema, table.name)
    gone = sql.SQL("SELECT r.target_id, r.source_id, r.before_image FROM ({}) AS r"
                   " WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {})").format(
        _records(stream, ["deleted"]), target, _row_match(table, "t", sql.SQL("r.target_id")))
    conn.execute(sql.SQL("CREATE TEMP TABLE _reinsert ON COMMIT DROP AS {}").format(gone), params)
    conn.execute("ANALYZE _reinsert")
    columns = [c.name for c in table.columns.values() if not c.generated]
    overriding = (sql.SQL(" OVERRIDING SYSTEM VALUE") if any(table.columns[c].identity == "always" for c in columns)
                  else sql.SQL(""))
    undo.reinserted = conn.execute(sql.SQL(
        "INSERT INTO {t} ({cols}){overriding} SELECT {values} FROM _reinsert AS x,"
        " LATERAL jsonb_populate_record(NULL::{t}, x.before_image) AS b").format(
        t=target, cols=sql.SQL(", ").join(ident(c) for c in columns), overriding=overriding,
        values=sql.SQL(", ").join(ident("b", c) for c in columns))).rowcount
    if undo.reinserted:
        run_id = conn.execute("SELECT run_id FROM import_control.runs WHERE run_seq = %s",
                              (params["run"],)).fetchone()[0]
        _audit_rolled_back(conn, stream, rows=sql.SQL("SELECT target_id, source_id, NULL::jsonb AS image FROM _reinsert"),
                           reason=f"rollback of run {run_id}: the row it deleted inserted again",
                           rollback_seq=rollback_seq, rollback_day=rollback_day, params=params)
    _mark(conn, stream, ["deleted"], rollback_seq, params)
