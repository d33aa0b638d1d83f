"""The late seed: fill in the references that were deferred to break cycles, in one transaction.

During load, a deferred reference is resolved right away when the referenced row already exists
in the target; otherwise the row is written without it and the referenced natural key is kept
in ``import_control.pending_references`` (by run group, so a re-execution of a failed run
resolves what its first attempt deferred). When every stream is loaded, this phase resolves all
of them in one transaction:

1. per deferred reference, one ``UPDATE ... FROM pending JOIN key_relation`` sets the target ids;
2. references that still cannot be resolved are recorded in ``import_errors`` (stage
   ``late_seed``) and returned as problems — a nullable column stays NULL, but never silently;
3. a row this run created that still points at a placeholder (a NOT NULL reference that could
   not be resolved) is removed and its audit row marked ``rolled_back``, since it would otherwise
   keep a fake reference;
4. the placeholder rows are deleted.

Any error rolls the whole phase back, so the target is exactly as the load phase left it.

NOT NULL cycle columns. A deferred column that is NOT NULL cannot be loaded as NULL, so the
referenced table gets one *placeholder row* before loading starts (its own transaction) and
pending rows point at it until step 1. The placeholder's NOT NULL columns without a default get
a neutral value of their type (a marker text ``~import_pipelines placeholder~`` for text, 0 or
the type's minimum for unique integers, the epoch for dates, ...); its own NOT NULL self
reference points at itself (the id is taken from the primary key's sequence first), and a NOT
NULL reference to another table points at that table's placeholder. A leftover placeholder of a
crashed run is found again by its marker and reused, then removed by the next late seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from import_pipelines.db.introspect import ColumnInfo, SchemaInfo, describe_schema
from import_pipelines.db.sql import ident, ident_list
from import_pipelines.engine.audit import RunRef
from import_pipelines.engine.merge import CONTROL, EngineError, key_text
from import_pipelines.engine.plan import MergePlan, Ref

PLACEHOLDER_MARKER = "~import_pipelines placeholder~"

TEXT_TYPES = {"text", "character varying", "character", "varchar", "char", "citext", "name"}
_INT_MIN = {"smallint": -(2 ** 15), "integer": -(2 ** 31), "bigint": -(2 ** 63)}
_LITERALS = {**dict.fromkeys(("numeric", "real", "double precision", "money", "decimal"), 0), "boolean": False,
             "date": "epoch", "timestamp without time zone": "epoch", "timestamp with time zone": "epoch",
             "time without time zone": "00:00", "time with time zone": "00:00+00", "interval": "0",
             "uuid": "00000000-0000-0000-0000-000000000000", "json": "{}", "jsonb": "{}", "bytea": "",
             "inet": "0.0.0.0", "cidr": "0.0.0.0/32", "macaddr": "00:00:00:00:00:00"}


@dataclass(frozen=True)
class Placeholders:
    """The placeholder row of every table a deferred NOT NULL reference points at, by qualified name."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # row key of each table


@dataclass
class LateSeedOutcome:
    """What the late seed did: references resolved, references left unresolved (each recorded), rows removed."""

    resolved: int = 0
    unresolved: int = 0
    removed: int = 0
    problems: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # entity, source id, ref, table, key
    warnings: list[str] = field(default_factory=list)


def create_placeholders(conn: psycopg.Connection, plans: Sequence[MergePlan], *,
                        marker_column: Callable[[str], str | None]) -> Placeholders:
    """Create (or find again) the placeholder row of every table a deferred NOT NULL reference of
    ``plans`` points at, in one transaction.

    ``marker_column(table)`` names the text column that carries the marker (a natural-key column,
    so a crashed run's placeholder is found again by it), or None.
    """
    referenced = {ref.table.name: ref.table.schema for plan in plans for ref in plan.deferred if ref.not_null}
    if not referenced:
        return Placeholders()
    schema = describe_schema(conn, next(iter(referenced.values())))
    made: dict[str, dict[str, Any]] = {}
    try:
        with conn.transaction():
            for table in sorted(referenced):
                _ensure_placeholder(conn, schema, table=table, made=made, stack=(), marker_column=marker_column)
    except psycopg.Error as exc:
        raise EngineError(f"could not create the placeholder rows for NOT NULL cycle columns "
                          f"({', '.join(sorted(referenced))}): {exc}. Make one column of the cycle nullable, "
                          f"or give the refused column a default") from exc
    return Placeholders(rows={f"{schema.schema}.{t}": row for t, row in made.items()},
                        keys={f"{schema.schema}.{t}": schema.table(t).primary_key for t in made})


def _ensure_placeholder(conn: psycopg.Connection, schema: SchemaInfo, *, table: str, made: dict[str, dict[str, Any]],
                        stack: tuple[str, ...], marker_column: Callable[[str], str | None]) -> dict[str, Any]:
    if table in made:
        return made[table]
    if table in stack:
        raise EngineError(f"cannot build placeholder rows for the NOT NULL reference cycle "
                          f"{' -> '.join((*stack, table))}: every column of it is NOT NULL; make one nullable")
    info = schema.table(table)
    marker = info.column(name) if (name := marker_column(table)) else None
    fks = {column: fk for fk in info.foreign_keys if fk.ref_schema == schema.schema for column in fk.columns}
    # the placeholders this one points at come first (and, found again, are removed after it)
    needed = [column for column in info.columns if column.name != getattr(marker, "name", None)
              and not (column.is_computed or column.default is not None or column.nullable)]
    pointed = {column.name: _ensure_placeholder(conn, schema, table=fks[column.name].ref_table, made=made,
                                                stack=(*stack, table), marker_column=marker_column)
               for column in needed if column.name in fks and fks[column.name].ref_table != table}
    existing = marker and conn.cursor(row_factory=dict_row).execute(sql.SQL(
        "SELECT * FROM {} WHERE {} = {} LIMIT 1").format(
        ident(schema.schema, table), ident(marker.name), sql.Literal(_marker(marker)))).fetchone()
    if existing:
        made[table] = existing
        return existing

    unique = {c for key in info.unique_keys for c in key.columns} | set(info.primary_key)
    columns: list[str] = [marker.name] if marker else []
    values: list[sql.Composable] = [sql.Literal(_marker(marker))] if marker else []
    self_columns: list[str] = []
    for column in needed:
        fk = fks.get(column.name)
        if fk is not None and fk.ref_table == table:
            if tuple(fk.ref_columns) != tuple(info.primary_key) or len(info.primary_key) != 1:
                raise EngineError(f"placeholder for {table!r}: the NOT NULL self reference {column.name} must point "
                                  f"at a single-column primary key")
            self_columns.append(column.name)
            continue
        columns.append(column.name)
        if fk is not None:
            value = pointed[column.name][fk.ref_columns[fk.columns.index(column.name)]]
            values.append(sql.SQL("CAST({} AS {})").format(sql.Literal(value), sql.SQL(column.data_type)))
        else:
            values.append(_neutral_value(conn, table=table, column=column, unique=column.name in unique))

    target_table = ident(schema.schema, table)
    overriding = source = sql.SQL("")
    if self_columns:
        # the row must reference itself, so take its id from the key's sequence first
        pk = info.primary_key[0]
        sequence = conn.execute("SELECT pg_get_serial_sequence(%s, %s)",
                                (target_table.as_string(conn), pk)).fetchone()[0]
        if sequence is None:
            raise EngineError(f"placeholder for {table!r}: its NOT NULL self reference needs an id before the row "
                              f"exists, but primary key {pk!r} has no sequence")
        columns = [pk, *columns, *self_columns]
        values = [sql.SQL("v.id"), *values, *(sql.SQL("v.id") for _ in self_columns)]
        overriding = sql.SQL(" OVERRIDING SYSTEM VALUE")
        source = sql.SQL(" FROM (SELECT nextval({}::regclass) AS id) AS v").format(sql.Literal(sequence))
    statement = (sql.SQL("INSERT INTO {} ({}){} SELECT {}{} RETURNING *").format(
        target_table, ident_list(columns), overriding, sql.SQL(", ").join(values), source) if columns
        else sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING *").format(target_table))
    made[table] = conn.cursor(row_factory=dict_row).execute(statement).fetchone()
    return made[table]


def _marker(column: ColumnInfo) -> str:
    return PLACEHOLDER_MARKER[:column.char_max_length] if column.char_max_length else PLACEHOLDER_MARKER


def _neutral_value(conn: psycopg.Connection, *, table: str, column: ColumnInfo, unique: bool) -> sql.Composable:
    base = column.data_type.split("(")[0].strip()
    if base in TEXT_TYPES:
        value: Any = _marker(column)
    elif base in _INT_MIN:
        # a unique integer gets the type's minimum, which real data practically never uses
        value = _INT_MIN[base] if unique else 0
    elif base in _LITERALS or column.data_type.endswith("[]"):
        value = _LITERALS.get(base, "{}")
    else:
        kind = conn.execute("SELECT typtype::text FROM pg_type WHERE oid = %s::regtype",
                            (column.data_type,)).fetchone()
        if kind and kind[0] == "e":
            return sql.SQL("(enum_range(NULL::{}))[1]").format(sql.SQL(column.data_type))
        raise EngineError(f"placeholder for {table!r}: no neutral value for NOT NULL column {column.name} of type "
                          f"{column.data_type}; give the column a default or make the cycle column nullable")
    return sql.SQL("CAST({} AS {})").format(sql.Literal(value), sql.SQL(column.data_type))


def late_seed(conn: psycopg.Connection, *, run: RunRef, plans: Sequence[MergePlan], stream_ids: Mapping[str, int],
              placeholders: Placeholders, max_problems: int = 1000) -> LateSeedOutcome:
    """Resolve every pending reference of the run group, record the rest, remove placeholders.

    One transaction: on any error the target is left as the load phase left it (``EngineError``).
    """
    outcome = LateSeedOutcome()
    try:
        with conn.transaction():
            conn.execute("SET LOCAL datestyle = 'ISO, YMD'; SET LOCAL intervalstyle = 'postgres'")
            for plan in plans:
                for ref in plan.deferred:
                    _resolve(conn, run=run, plan=plan, ref=ref, stream_id=stream_ids[plan.entity], outcome=outcome,
                             max_problems=max_problems)
            if placeholders.rows:
                _remove_placeholders(conn, run=run, plans=plans, stream_ids=stream_ids, placeholders=placeholders,
                                     outcome=outcome)
            conn.execute(sql.SQL("DELETE FROM {}.pending_references WHERE run_group = %s").format(CONTROL),
                         (run.run_group,))
    except psycopg.Error as exc:
        deferred = ", ".join(f"{p.entity}.{r.name}" for p in plans for r in p.deferred) or "no late references"
        raise EngineError(f"the late-seed phase failed and was rolled back, so the target is as the load phase "
                          f"left it ({deferred}): {exc}") from exc
    return outcome


def _pending(ref: Ref, plan: MergePlan, *, stream_id: int) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """The pending rows of one reference, how they meet the key relation ``k``, and the row match."""
    where = sql.SQL("p.run_group = %(group)s AND p.stream_id = {} AND p.reference = {}").format(
        sql.Literal(stream_id), sql.Literal(ref.name))
    on = sql.SQL(" AND ").join(sql.SQL("k.{} = (p.atoms[{}])::{}").format(ident(f"k{j}"), sql.Literal(j + 1),
                                                                          sql.SQL(kind))
                               for j, kind in enumerate(ref.atom_types))
    row = sql.SQL(" AND ").join(sql.SQL("t.{} = (p.row_key[{}])::{}").format(ident(c), sql.Literal(i + 1),
                                                                            sql.SQL(plan.table.key_type(i)))
                                for i, c in enumerate(plan.table.row_key))
    return where, on, row


def _resolve(conn: psycopg.Connection, *, run: RunRef, plan: MergePlan, ref: Ref, stream_id: int,
             outcome: LateSeedOutcome, max_problems: int) -> None:
    where, on, row = _pending(ref, plan, stream_id=stream_id)
    target = ident(plan.table.schema, plan.table.name)
    sets = sql.SQL(", ").join(sql.SQL("{} = k.{}").format(ident(c), ident(f"r{i}")) for i, c in enumerate(ref.columns))
    params = {"group": run.run_group}
    cur = conn.execute(sql.SQL("UPDATE {} AS t SET {} FROM {}.pending_references AS p JOIN ({}) AS k ON {}"
                               " WHERE {} AND {}").format(target, sets, CONTROL, ref.relation, on, where, row), params)
    outcome.resolved += cur.rowcount
    atoms = [sql.SQL("p.atoms[{}]").format(sql.Literal(j + 1)) for j in range(len(ref.atoms))]
    unresolved = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM ({}) AS k WHERE {})").format(where, ref.relation, on)
    message = sql.SQL("{} || CASE WHEN p.created OR NOT {} THEN {} ELSE {} END").format(
        ref.describe_missing(atoms), sql.Literal(ref.not_null),
        sql.Literal("; the row was created without it and has been removed" if ref.not_null else "; left empty"),
        sql.Literal("; the previous value was kept"))
    cur = conn.execute(sql.SQL(
        "INSERT INTO {}.import_errors (run_id, profile, entity, source_id, stage, field, message)"
        " SELECT {}, {}, {}, p.source_id, 'late_seed', {}, {} FROM {}.pending_references AS p WHERE {}").format(
        CONTROL, sql.Literal(run.run_id), sql.Literal(plan.profile), sql.Literal(plan.entity), sql.Literal(ref.label),
        message, CONTROL, unresolved), params)
    outcome.unresolved += max(cur.rowcount, 0)
    if cur.rowcount > 0 and len(outcome.problems) < max_problems:
        for sid, key in conn.execute(sql.SQL("SELECT p.source_id, {} FROM {}.pending_references AS p WHERE {} LIMIT {}").format(
                key_text(ref.atom_names, atoms), CONTROL, unresolved, sql.Literal(max_problems - len(outcome.problems))), params).fetchall():
            outcome.problems.append((plan.entity, sid, ref.label, ref.table.name, key))


def _remove_placeholders(conn: psycopg.Connection, *, run: RunRef, plans: Sequence[MergePlan],
                         stream_ids: Mapping[str, int], placeholders: Placeholders, outcome: LateSeedOutcome) -> None:
    """Remove this run's rows still pointing at a placeholder (their reference was recorded
    unresolved; their audit rows become ``rolled_back``), then the placeholders themselves — unless
    rows of an earlier, interrupted run still point at one: those are kept with a warning, never
    deleted by a run that did not create them (an upsert run repairs them)."""
    still_used: set[str] = set()
    for plan in reversed(plans):
        for ref in plan.deferred:
            row = placeholders.rows.get(ref.table.qualified)
            if not ref.not_null or row is None:
                continue
            where, _, match = _pending(ref, plan, stream_id=stream_ids[plan.entity])
            points_at = sql.SQL(" AND ").join(
                sql.SQL("t.{} = CAST({} AS {})").format(ident(c), sql.Literal(row[rc]), sql.SQL(kind))
                for c, rc, kind in zip(ref.columns, ref.ref_columns, ref.column_types, strict=True))
            target = ident(plan.table.schema, plan.table.name)
            removed = conn.execute(sql.SQL(
                "DELETE FROM {} AS t USING {}.pending_references AS p WHERE {} AND p.created AND {} AND {}"
                " RETURNING p.source_id").format(target, CONTROL, where, match, points_at),
                {"group": run.run_group}).fetchall()
            if removed:
                outcome.removed += len(removed)
                conn.execute(sql.SQL(
                    "UPDATE {}.audit_records SET action = 'rolled_back', error = concat_ws('; ', error, {})"
                    " WHERE run_day = %s AND run_seq = %s AND stream_id = %s AND source_id = ANY(%s)"
                    " AND action = 'created'").format(
                    CONTROL, sql.Literal(f"removed by the late seed: {ref.label} could not be resolved")),
                    (run.run_day, run.run_seq, stream_ids[plan.entity], [sid for (sid,) in removed]))
            # a self-referencing placeholder points at itself; that one does not count
            itself = (sql.SQL(" AND NOT ({})").format(_placeholder_match(placeholders, ref.table.qualified))
                      if ref.table.qualified == plan.table.qualified else sql.SQL(""))
            if conn.execute(sql.SQL("SELECT 1 FROM {} AS t WHERE {}{} LIMIT 1").format(
                    target, points_at, itself)).fetchone():
                still_used.add(ref.table.qualified)
    for table in reversed(list(placeholders.rows)):
        if table in still_used:
            outcome.warnings.append(f"the placeholder row in {table.split('.', 1)[1]!r} is kept: rows loaded by an"
                                    f" earlier, interrupted run still point at it; an upsert run repairs them")
            continue
        schema, name = table.split(".", 1)
        conn.execute(sql.SQL("DELETE FROM {} AS t WHERE {}").format(
            ident(schema, name), _placeholder_match(placeholders, table)))


def _placeholder_match(placeholders: Placeholders, table: str) -> sql.Composable:
    """``t`` is the placeholder row of ``table`` (by its key)."""
    row = placeholders.rows[table]
    return sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("t", c), sql.Literal(row[c]))
                                 for c in placeholders.keys[table])
