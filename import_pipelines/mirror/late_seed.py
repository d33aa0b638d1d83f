"""The late-seed phase: fill in references that were deferred to break cycles.

During the load phase a deferred reference is resolved right away when the referenced row
already exists in the target; otherwise the row is written without it and the referenced
natural key is kept in an UNLOGGED ``..._late`` table. When every table is loaded, this phase
resolves all of them in one transaction:

1. per deferred reference, one ``UPDATE ... FROM late JOIN key_relation`` sets the target ids;
2. references that still cannot be resolved become ``failed`` audit rows and report entries
   (table, row natural key, column, missing key) - a nullable column stays NULL, but never
   silently;
3. rows created by this run that still point at a placeholder (a NOT NULL reference that
   could not be resolved) are removed, since they would otherwise keep a fake reference;
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

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from import_pipelines.db.introspect import ColumnInfo
from import_pipelines.db.sql import ident, ident_list
from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.mirror.merge import AUDIT_TABLE, MAX_REPORTED_ERRORS, id_text, key_text, sql_type
from import_pipelines.mirror.plan import LoadPlan
from import_pipelines.mirror.report import MirrorError, ReferenceProblem

if TYPE_CHECKING:
    from import_pipelines.mirror.merge import Loader

PLACEHOLDER_MARKER = "~import_pipelines placeholder~"

_TEXT_TYPES = {"text", "character varying", "character", "varchar", "char", "citext", "name"}
_INT_MIN = {"smallint": -(2 ** 15), "integer": -(2 ** 31), "bigint": -(2 ** 63)}
_ZERO_TYPES = {"numeric", "real", "double precision", "money", "decimal"}
_LITERALS = {"boolean": False, "date": "epoch", "timestamp without time zone": "epoch",
             "timestamp with time zone": "epoch", "time without time zone": "00:00",
             "time with time zone": "00:00+00", "interval": "0", "uuid": "00000000-0000-0000-0000-000000000000",
             "json": "{}", "jsonb": "{}", "bytea": "", "inet": "0.0.0.0", "cidr": "0.0.0.0/32",
             "macaddr": "00:00:00:00:00:00"}


def create_placeholders(conn: psycopg.Connection, plan: LoadPlan) -> dict[str, dict[str, Any]]:
    """Create (or find) one placeholder row per table in ``plan.placeholder_tables``.

    Returns the rows as dicts (all columns) in creation order, so they can be removed in
    reverse order (a placeholder may point at another table's placeholder).
    """
    made: dict[str, dict[str, Any]] = {}
    try:
        with conn.transaction():
            for table in plan.placeholder_tables:
                _ensure_placeholder(conn, plan, table=table, made=made, stack=())
    except psycopg.Error as exc:
        raise MirrorError(f"could not create the placeholder rows for NOT NULL cycle columns "
                          f"({', '.join(plan.placeholder_tables)}): {exc}. Make one column of the cycle nullable, "
                          f"or give the refused column a default") from exc
    return made


def _ensure_placeholder(conn: psycopg.Connection, plan: LoadPlan, *, table: str, made: dict[str, dict[str, Any]],
                        stack: tuple[str, ...]) -> dict[str, Any]:
    if table in made:
        return made[table]
    if table in stack:
        raise MirrorError(f"cannot build placeholder rows for the NOT NULL reference cycle "
                          f"{' -> '.join((*stack, table))}: every column of it is NOT NULL; make one nullable")
    info = plan.keys.schema.table(table)
    existing = _find_placeholder(conn, plan=plan, table=table)
    if existing is not None:
        made[table] = existing
        return existing

    unique = {c for key in info.unique_keys for c in key.columns} | set(info.primary_key)
    fks = {column: fk for fk in info.foreign_keys if fk.ref_schema == plan.schema for column in fk.columns}
    columns: list[str] = []
    values: list[sql.Composable] = []
    self_columns: list[str] = []
    for column in info.columns:
        if column.is_computed or column.default is not None or column.nullable:
            continue
        fk = fks.get(column.name)
        if fk is not None and fk.ref_table == table:
            if tuple(fk.ref_columns) != tuple(info.primary_key) or len(info.primary_key) != 1:
                raise MirrorError(f"placeholder for {table!r}: the NOT NULL self reference {column.name} must point "
                                  f"at a single-column primary key")
            self_columns.append(column.name)
            continue
        if fk is not None:
            target = _ensure_placeholder(conn, plan, table=fk.ref_table, made=made, stack=(*stack, table))
            value = target[fk.ref_columns[fk.columns.index(column.name)]]
            columns.append(column.name)
            values.append(sql.SQL("CAST({} AS {})").format(sql.Literal(value), sql_type(column.data_type)))
            continue
        columns.append(column.name)
        values.append(_neutral_value(conn, table=table, column=column, unique=column.name in unique))

    target_table = ident(plan.schema, table)
    cur = conn.cursor(row_factory=dict_row)
    if self_columns:
        # the row must reference itself, so take its id from the key's sequence first
        pk = info.primary_key[0]
        sequence = conn.execute("SELECT pg_get_serial_sequence(%s, %s)",
                                (target_table.as_string(conn), pk)).fetchone()[0]
        if sequence is None:
            raise MirrorError(f"placeholder for {table!r}: its NOT NULL self reference needs an id before the row "
                              f"exists, but primary key {pk!r} has no sequence")
        statement = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT v.id{}{} "
                            "FROM (SELECT nextval({}::regclass) AS id) AS v RETURNING *").format(
            target_table, ident_list([pk, *columns, *self_columns]),
            sql.SQL("").join(sql.SQL(", {}").format(value) for value in values),
            sql.SQL("").join(sql.SQL(", v.id") for _ in self_columns), sql.Literal(sequence))
    elif columns:
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
            target_table, ident_list(columns), sql.SQL(", ").join(values))
    else:
        statement = sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING *").format(target_table)
    row = cur.execute(statement).fetchone()
    assert row is not None
    made[table] = row
    return row


def _marker_column(plan: LoadPlan, table: str) -> ColumnInfo | None:
    """The first plain text column of the natural key: it carries the marker."""
    info = plan.keys.schema.table(table)
    for kind, value in plan.keys.key_elements(table):
        if kind == "column":
            column = info.column(value)
            if column.data_type.split("(")[0] in _TEXT_TYPES and not column.is_computed:
                return column
    return None


def _find_placeholder(conn: psycopg.Connection, *, plan: LoadPlan, table: str) -> dict[str, Any] | None:
    column = _marker_column(plan, table)
    if column is None:
        return None
    marker = PLACEHOLDER_MARKER[:column.char_max_length] if column.char_max_length else PLACEHOLDER_MARKER
    return conn.cursor(row_factory=dict_row).execute(
        sql.SQL("SELECT * FROM {} WHERE {} = {} LIMIT 1").format(
            ident(plan.schema, table), ident(column.name), sql.Literal(marker))).fetchone()


def _neutral_value(conn: psycopg.Connection, *, table: str, column: ColumnInfo, unique: bool) -> sql.Composable:
    base = column.data_type.split("(")[0].strip()
    value: Any
    if base in _TEXT_TYPES:
        value = PLACEHOLDER_MARKER[:column.char_max_length] if column.char_max_length else PLACEHOLDER_MARKER
    elif base in _INT_MIN:
        # a unique integer gets the type's minimum, which real data practically never uses
        value = _INT_MIN[base] if unique else 0
    elif base in _ZERO_TYPES:
        value = 0
    elif base in _LITERALS:
        value = _LITERALS[base]
    elif column.data_type.endswith("[]"):
        value = "{}"
    else:
        kind = conn.execute("SELECT typtype::text FROM pg_type WHERE oid = %s::regtype",
                            (column.data_type,)).fetchone()
        if kind and kind[0] == "e":
            return sql.SQL("(enum_range(NULL::{}))[1]").format(sql_type(column.data_type))
        raise MirrorError(f"placeholder for {table!r}: no neutral value for NOT NULL column {column.name} of type "
                          f"{column.data_type}; give the column a default or make the cycle column nullable")
    return sql.SQL("CAST({} AS {})").format(sql.Literal(value), sql_type(column.data_type))


def late_seed(loader: Loader) -> None:
    """Resolve every pending late reference, report the rest, remove placeholders (one transaction)."""
    plan, conn, report = loader.plan, loader.conn, loader.report
    try:
        with conn.transaction():
            cur = conn.cursor()
            for table in plan.order:
                statements = loader.statements[table]
                tp = statements.table
                if not tp.deferred_groups or statements.late is None:
                    continue
                late = ident(CONTROL_SCHEMA, statements.late)
                target = ident(plan.schema, table)
                row_match = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("t", c), ident("l", f"t{i}"))
                                                  for i, c in enumerate(tp.row_key))
                for gi in tp.deferred_groups:
                    group = tp.groups[gi]
                    relation = plan.keys.key_relation(group.ref_table, group.spec.ref_columns, schema_name=plan.schema)
                    on = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("k", f"k{j}"), ident("l", f"a{gi}_{j}"))
                                               for j in range(len(group.atoms)))
                    sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(ident(c), ident("k", f"r{k}"))
                                              for k, c in enumerate(group.columns))
                    cur.execute(sql.SQL("UPDATE {} AS t SET {} FROM {} AS l JOIN ({}) AS k ON {} "
                                        "WHERE {} AND {}").format(target, sets, late, relation, on,
                                                                  ident("l", f"u{gi}"), row_match))
                    report.late_seeded += cur.rowcount
                    _report_unresolved(loader, cur, table=table, gi=gi, late=late, relation=relation, on=on)
            _remove_placeholders(loader, cur)
    except psycopg.Error as exc:
        raise MirrorError(f"the late-seed phase failed and was rolled back, so the target is as the load phase "
                          f"left it ({', '.join(report.deferred_references) or 'no late references'}): "
                          f"{exc}") from exc


def _report_unresolved(loader: Loader, cur: psycopg.Cursor, *, table: str, gi: int, late: sql.Identifier,
                       relation: sql.Composed, on: sql.Composed) -> None:
    report = loader.report
    tp = loader.statements[table].table
    group = tp.groups[gi]
    missing = key_text((atom.name for atom in group.atoms),
                       (ident("l", f"a{gi}_{j}") for j in range(len(group.atoms))))
    unresolved = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM ({}) AS k WHERE {})").format(
        ident("l", f"u{gi}"), relation, on)
    outcome = ("; the row was created without it and has been removed" if group.not_null
               else "; the column stays NULL")
    message = sql.SQL("{} || {} || CASE WHEN l.created THEN {} ELSE {} END").format(
        sql.Literal(f"unresolved late reference {table}.{group.spec.label} -> {group.ref_table}: "
                    f"no row with natural key "), missing, sql.Literal(outcome),
        sql.Literal("; the previous value was kept"))
    tid = id_text([ident("l", f"t{i}") for i in range(len(tp.row_key))])
    cur.execute(sql.SQL(
        "INSERT INTO {} (run_id, profile, entity, source_table, source_id, target_table, target_id, action, error) "
        "SELECT {}, {}, {}, {}, l.sid, {}, {}, 'failed', {} FROM {} AS l WHERE {}").format(
        AUDIT_TABLE, sql.Literal(loader.run_id), sql.Literal(loader.profile), sql.Literal(table), sql.Literal(table),
        sql.Literal(table), tid, message, late, unresolved))
    if cur.rowcount <= 0:
        return
    report.error_count += cur.rowcount
    room = MAX_REPORTED_ERRORS - len(report.errors)
    if room <= 0:
        return
    for sid, key, text in cur.execute(sql.SQL("SELECT l.sid, {}, {} FROM {} AS l WHERE {} LIMIT {}").format(
            missing, message, late, unresolved, sql.Literal(room))).fetchall():
        report.errors.append(ReferenceProblem(table, sid, group.spec.label, group.ref_table, key, "late_seed",
                                              f"{table} {sid}: {text}"))


def _remove_placeholders(loader: Loader, cur: psycopg.Cursor) -> None:
    """Remove this run's rows still pointing at a placeholder (their reference was reported
    unresolved), then the placeholders themselves - unless rows from an earlier, interrupted run
    still point at one: those are kept with a warning, never deleted by a run that did not
    create them (an upsert run repairs them)."""
    plan, placeholders, report = loader.plan, loader.placeholders, loader.report
    if not placeholders:
        return
    still_used: set[str] = set()
    for table in reversed(plan.order):
        statements = loader.statements[table]
        tp = statements.table
        for gi, group in enumerate(tp.groups):
            row = placeholders.get(group.ref_table)
            if not (group.deferred and group.not_null) or row is None or statements.late is None:
                continue
            points_at_placeholder = sql.SQL(" AND ").join(
                sql.SQL("{} = CAST({} AS {})").format(ident("t", c), sql.Literal(row[ref]), sql_type(t))
                for c, ref, t in zip(group.columns, group.spec.ref_columns, group.column_types, strict=True))
            row_match = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("t", c), ident("l", f"t{i}"))
                                              for i, c in enumerate(tp.row_key))
            cur.execute(sql.SQL("DELETE FROM {} AS t USING {} AS l WHERE l.created AND {} AND {}").format(
                ident(plan.schema, table), ident(CONTROL_SCHEMA, statements.late), row_match,
                points_at_placeholder))
            # a self-referencing placeholder points at itself; that one does not count
            not_itself = (_placeholder_match(plan, table=table, row=row, alias="t", negate=True)
                          if table == group.ref_table else sql.SQL("true"))
            if cur.execute(sql.SQL("SELECT 1 FROM {} AS t WHERE {} AND {} LIMIT 1").format(
                    ident(plan.schema, table), points_at_placeholder, not_itself)).fetchone():
                still_used.add(group.ref_table)
    for table, row in reversed(list(placeholders.items())):
        if table in still_used:
            report.warnings.append(f"the placeholder row in {table!r} is kept: rows loaded by an earlier, "
                                   f"interrupted run still point at it; an upsert run repairs them")
            continue
        cur.execute(sql.SQL("DELETE FROM {} AS t WHERE {}").format(
            ident(plan.schema, table), _placeholder_match(plan, table=table, row=row, alias="t")))


def _placeholder_match(plan: LoadPlan, *, table: str, row: dict[str, Any], alias: str,
                       negate: bool = False) -> sql.Composable:
    """``alias`` is (or, negated, is not) the placeholder row of ``table``."""
    info = plan.keys.schema.table(table)
    key = info.primary_key or plan.keys.natural_key(table)[0]
    match = sql.SQL(" AND ").join(sql.SQL("{} = CAST({} AS {})").format(
        ident(alias, c), sql.Literal(row[c]), sql_type(info.column(c).data_type)) for c in key)
    return sql.SQL("NOT ({})").format(match) if negate else match
