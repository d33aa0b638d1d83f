"""Target rows whose source record disappeared: left, marked inactive or deleted, by the profile's rule.

The candidates come from complete reads only (:func:`import_pipelines.pipeline.record_reads.record_gone`,
kept in ``import_control.source_gone`` by each entity's load step). Once every entity of the run
has loaded, :func:`apply_source_deletions` applies each entity's rule, dependents first (notices
before the cases they point at), so a delete never trips over a row that is itself about to go.

A target row is acted on only when

- every source record the stream's state maps to it is gone (an offender named on two cases
  stays while one of them remains), and
- this source created it: its natural key carries the profile's ``source_system``. A row the
  import only matched (an existing row found by a dedupe rule) belongs to someone else.

Each action writes an audit row (``deactivated`` or ``deleted``) with the row's before-image, so a
rollback can restore it, and removes the records' state, so a record that comes back is imported
again. A delete the database refuses (another row still references it) is audited as ``failed``
with the database's message and its state kept: the next complete read tries again. When more
than the rule's ``max_share`` of the rows a stream knows (and more than
:data:`GUARD_MIN_ROWS`) would go at once, nothing of that entity is touched and the step fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA, ensure_control_schema
from import_pipelines.db.connect import connect
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import RunRef, register_run, stream_ids
from import_pipelines.engine.merge import describe_error
from import_pipelines.pipeline.plan import EntityPlan, build_plan
from import_pipelines.templates.graph import dependency_order
from import_pipelines.templates.model import SourceDelete, Template

Log = Callable[[str], None]
CONTROL = ident(CONTROL_SCHEMA)
GUARD_MIN_ROWS = 10  # below this many rows, the share guard does not apply (one of three records may go)


class SourceDeleteRefused(RuntimeError):
    """Too many rows would be deactivated or deleted at once; the message says how many and what to check."""


def apply_source_deletions(target_url: str, *, template: Template, profile: str, run_id: str, run_group: str | None,
                           source_system: str, rules: Mapping[str, SourceDelete], log: Log = print
                           ) -> dict[str, Counter[str]]:
    """Apply each entity's rule to the rows its complete reads of this run group no longer found.

    ``rules`` is the effective rule per entity (template and profile). Returns the counts by
    action per entity. Each entity is one transaction.
    """
    outcome: dict[str, Counter[str]] = {}
    with connect(target_url, autocommit=True, purpose=f"target of profile {profile}") as conn:
        ensure_control_schema(conn)
        ref = register_run(conn, run_id=run_id, profile=profile, run_group=run_group)
        streams = stream_ids(conn, profile)
        for name in reversed(dependency_order(template)):
            rule = rules.get(name)
            if rule is None or rule.action == "leave" or name not in streams:
                continue
            plan = build_plan(conn, template=template, entity_name=name, profile=profile, source_system=source_system)
            counts = _apply(conn, plan, rule=rule, ref=ref, stream_id=streams[name], log=log)
            if counts:
                outcome[name] = counts
    return outcome


def _apply(conn: psycopg.Connection, plan: EntityPlan, *, rule: SourceDelete, ref: RunRef, stream_id: int,
           log: Log) -> Counter[str]:
    table = plan.table
    target = ident(table.schema, table.name)
    key = ident(table.primary_key)
    key_type = sql.SQL(table.key_type())
    nk = plan.template.natural_key
    name = plan.entity_name
    counts: Counter[str] = Counter()
    if rule.action == "deactivate" and rule.column not in table.columns:
        raise ValueError(f"entity {name!r}: on_source_delete.column {rule.column!r} is not a column of"
                         f" {table.qualified}")
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE _gone ON COMMIT DROP AS SELECT g.source_id, g.target_id"
                     " FROM import_control.source_gone AS g WHERE g.stream_id = %s AND g.run_seq IN"
                     " (SELECT run_seq FROM import_control.runs WHERE run_group = %s)", (stream_id, ref.run_group))
        # the rows to act on: every state record pointing at them is gone, and this source created them
        conn.execute(sql.SQL(
            "CREATE TEMP TABLE _acted ON COMMIT DROP AS"
            " SELECT g.target_id, min(g.source_id) AS source_id, row_number() OVER (ORDER BY g.target_id) AS n"
            " FROM _gone AS g JOIN {t} AS t ON t.{key} = (g.target_id)::{key_type} AND t.{system} = %s"
            " WHERE g.target_id NOT IN (SELECT rs.target_id FROM {control}.record_state AS rs WHERE rs.stream_id = %s"
            " AND rs.target_id IS NOT NULL AND rs.source_id NOT IN (SELECT source_id FROM _gone))"
            " GROUP BY g.target_id").format(t=target, key=key, key_type=key_type, system=ident(nk.system_column),
                                            control=CONTROL),
            (plan.source_system, stream_id))
        acted, gone = conn.execute("SELECT (SELECT count(*) FROM _acted), (SELECT count(*) FROM _gone)").fetchone()
        known = conn.execute("SELECT count(DISTINCT target_id) FROM import_control.record_state WHERE stream_id = %s",
                             (stream_id,)).fetchone()[0]
        if gone and not acted:
            log(f"{name} source deletions: {gone:,} records gone from the source; their rows are still named by other"
                " records or were not created by this source: left as they are")
        if acted > GUARD_MIN_ROWS and acted > rule.max_share * known:
            raise SourceDeleteRefused(
                f"{name}: {acted:,} of the {known:,} rows of {table.qualified} this profile knows would be"
                f" {rule.action}d because their records are gone from the source, more than max_share"
                f" {rule.max_share:.0%}; nothing was changed. Check the source (an emptied table, a changed view or"
                f" filter), or raise entities.{name}.on_source_delete.max_share if this is meant")
        if not acted:
            conn.execute("DELETE FROM import_control.source_gone WHERE stream_id = %s", (stream_id,))
            return counts
        if rule.action == "deactivate":
            counts["deactivated"] = _deactivate(conn, plan, rule=rule, ref=ref, stream_id=stream_id)
        else:
            counts.update(_delete(conn, plan, ref=ref, stream_id=stream_id))
        conn.execute("DELETE FROM import_control.source_gone WHERE stream_id = %s", (stream_id,))
    log(f"{name} source deletions: " + ", ".join(f"{action} {count:,}" for action, count in counts.items())
        + f" of {table.qualified}")
    return counts


def _audit(conn: psycopg.Connection, plan: EntityPlan, *, ref: RunRef, stream_id: int, action: str,
           where: sql.Composable, error: str | None = None) -> int:
    """Audit rows for the acted rows matching ``where`` (over ``a``, ``_acted``): the row's before-image kept.

    Their ``record_no`` is negative (the acted row's number): they are no staged record.
    """
    table = plan.table
    return conn.execute(sql.SQL(
        "INSERT INTO {control}.audit_records (run_seq, stream_id, record_no, action, source_id, source_ref,"
        " target_id, error, before_image, run_day)"
        " SELECT %s, %s, -a.n, %s, a.source_id, %s, a.target_id, %s, to_jsonb(t.*), %s FROM _acted AS a"
        " JOIN {t} AS t ON t.{key} = (a.target_id)::{key_type} WHERE {where}").format(
        control=CONTROL, t=ident(table.schema, table.name), key=ident(table.primary_key),
        key_type=sql.SQL(table.key_type()), where=where),
        (ref.run_seq, stream_id, action, f"no longer in the source of {plan.entity_name}", error,
         ref.run_day)).rowcount


def _forget(conn: psycopg.Connection, *, stream_id: int, where: sql.Composable) -> None:
    """Remove the state of every record pointing at the acted rows matching ``where``: back, it is imported again."""
    conn.execute(sql.SQL("DELETE FROM {}.record_state AS rs USING _acted AS a WHERE rs.stream_id = %s"
                         " AND rs.target_id = a.target_id AND {}").format(CONTROL, where), (stream_id,))


def _deactivate(conn: psycopg.Connection, plan: EntityPlan, *, rule: SourceDelete, ref: RunRef, stream_id: int) -> int:
    table = plan.table
    assert rule.column is not None
    audited = _audit(conn, plan, ref=ref, stream_id=stream_id, action="deactivated", where=sql.SQL("true"))
    sets = [sql.SQL("{} = CAST({} AS {})").format(ident(rule.column), sql.Literal(rule.value),
                                                  sql.SQL(table.columns[rule.column].data_type))]
    sets += [sql.SQL("{} = now()").format(ident(c)) for c in plan.merge.touch if c != rule.column]
    conn.execute(sql.SQL("UPDATE {t} AS t SET {sets} FROM _acted AS a WHERE t.{key} = (a.target_id)::{key_type}"
                         ).format(t=ident(table.schema, table.name), sets=sql.SQL(", ").join(sets),
                                  key=ident(table.primary_key), key_type=sql.SQL(table.key_type())))
    _forget(conn, stream_id=stream_id, where=sql.SQL("true"))
    return audited


def _delete(conn: psycopg.Connection, plan: EntityPlan, *, ref: RunRef, stream_id: int) -> Counter[str]:
    """Delete the acted rows: all at once, or one by one when the database refuses some (a reference to them)."""
    table = plan.table
    target = ident(table.schema, table.name)
    statement = sql.SQL("DELETE FROM {t} AS t USING _acted AS a WHERE t.{key} = (a.target_id)::{key_type}"
                        " AND {where}").format
    names = dict(t=target, key=ident(table.primary_key), key_type=sql.SQL(table.key_type()))
    try:
        with conn.transaction():
            audited = _audit(conn, plan, ref=ref, stream_id=stream_id, action="deleted", where=sql.SQL("true"))
            conn.execute(statement(where=sql.SQL("true"), **names))
            _forget(conn, stream_id=stream_id, where=sql.SQL("true"))
        return Counter(deleted=audited)
    except psycopg.errors.IntegrityError:
        pass
    counts: Counter[str] = Counter()
    for (number,) in conn.execute("SELECT n FROM _acted ORDER BY n").fetchall():
        one = sql.SQL("a.n = {}").format(sql.Literal(number))
        try:
            with conn.transaction():
                _audit(conn, plan, ref=ref, stream_id=stream_id, action="deleted", where=one)
                conn.execute(statement(where=one, **names))
                _forget(conn, stream_id=stream_id, where=one)
            counts["deleted"] += 1
        except psycopg.errors.IntegrityError as error:
            _audit(conn, plan, ref=ref, stream_id=stream_id, action="failed", where=one,
                   error=f"not deleted although its record is gone from the source: {describe_error(error)}")
            counts["failed"] += 1
    return counts
