"""Staging and the set-based merge of one batch, shared by the mirror and the archive import.

Per table and batch, in one transaction:

1. ``COPY`` the batch (PostgreSQL text format, already in the staging layout) into an UNLOGGED
   staging table in ``import_control``.
2. One ``CREATE TEMP TABLE ... AS SELECT`` resolves everything at once: every reference group
   is joined to the referenced table's key relation on natural key (target ids), the table
   itself is joined on its natural key (existing row or not), and each row gets its action:
   ``failed`` (NULL natural key or unresolvable reference), ``created``, ``skipped``
   (create_only), ``updated`` or ``unchanged`` (upsert, by comparing every copied column).
3. One ``INSERT ... SELECT`` for new rows, one ``UPDATE ... FROM`` for changed rows (with the
   before-image captured in step 2), one ``INSERT`` of the audit rows, one ``INSERT`` of the
   references left for the late-seed phase.

So a batch costs a fixed handful of statements whatever its size: no per-row round trips.
All values that end up in SQL text are catalogue names (quoted by ``ident``) or literals
rendered by psycopg; statements run without parameters so a ``%`` in a name is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from import_pipelines.db.connect import configure_bulk_session
from import_pipelines.db.sql import SCRATCH_TABLE, ident, ident_list
from import_pipelines.control import CONTROL_SCHEMA, ensure_control_schema
from import_pipelines.mirror.plan import LoadPlan, TablePlan
from import_pipelines.mirror.report import MirrorError, MirrorReport, Mode, ReferenceProblem, TableReport

log = logging.getLogger(__name__)

AUDIT_TABLE = ident(CONTROL_SCHEMA, "import_records")
MAX_REPORTED_ERRORS = 1000
# a batch that fails on a data error is split in halves until the bad rows are isolated; more
# isolated failures than this in one table means something systematic is wrong, so stop
MAX_ISOLATED_FAILURES = 1000
_NO_EQUALITY = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}

ProgressCallback = Callable[[TableReport], None]


def sql_type(data_type: str) -> sql.SQL:
    """A type name from ``format_type`` as SQL (catalogue text, never user input)."""
    return sql.SQL(data_type)


def comparable(expr: sql.Composable, data_type: str) -> sql.Composable:
    """``expr`` in a form that has an equality operator (json has none; compare it as jsonb)."""
    if data_type == "json":
        return sql.SQL("({})::jsonb").format(expr)
    if data_type in _NO_EQUALITY:
        return sql.SQL("({})::text").format(expr)
    return expr


def key_text(names: Iterable[str], exprs: Iterable[sql.Composable]) -> sql.Composable:
    """``jsonb_build_object('atom', value, ...)::text``: a natural key as readable text."""
    pairs = [sql.SQL("{}, {}").format(sql.Literal(name), expr) for name, expr in zip(names, exprs, strict=True)]
    return sql.SQL("jsonb_build_object({})::text").format(sql.SQL(", ").join(pairs))


def id_text(exprs: list[sql.Composable]) -> sql.Composable:
    """A row key as text: the value for one column, a JSON array for several."""
    if len(exprs) == 1:
        return sql.SQL("({})::text").format(exprs[0])
    return sql.SQL("jsonb_build_array({})::text").format(sql.SQL(", ").join(exprs))


def batched_rows(rows: Iterable[bytes | memoryview], size: int) -> Iterator[list[bytes]]:
    """Group text-format COPY lines into lists of ``size`` rows."""
    batch: list[bytes] = []
    for row in rows:
        batch.append(row if isinstance(row, bytes) else bytes(row))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def audit_id_prefix() -> str:
    """The first 20 hex digits (with dashes) of a time-ordered UUID, for :meth:`TableStatements.audit_sql`.

    Laid out like UUIDv7: 48 bits of milliseconds, version 7, 12 random bits, the variant and 12
    more random bits; the row number of the batch fills the last 48 bits. Later batches get
    larger ids, so the primary-key index grows at its right edge (no page splits mid-index).
    """
    import secrets

    millis = time.time_ns() // 1_000_000
    rand = secrets.randbits(24)
    return (f"{millis >> 16:08x}-{millis & 0xFFFF:04x}-7{rand >> 12:03x}-"
            f"{0x8 | secrets.randbits(2):x}{rand & 0xFFF:03x}-")


def _c(slot: int, alias: str | None = None) -> sql.Identifier:
    return ident(alias, f"c{slot}") if alias else ident(f"c{slot}")


@dataclass
class TableStatements:
    """Every statement needed to load one table; composing them is cheap, they run per batch."""

    plan: LoadPlan
    table: TablePlan
    stage: str
    late: str | None
    mode: Mode
    placeholders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # order of the layout slots in the incoming data, when it differs from the layout's own
    copy_slots: tuple[int, ...] | None = None
    # sequence of a single-column row key: new ids are drawn while resolving, so the INSERT
    # needs no RETURNING and no join back to find out which row got which id
    sequence: str | None = None

    # -- names -------------------------------------------------------------------------------
    @property
    def target(self) -> sql.Identifier:
        """The target table."""
        return ident(self.plan.schema, self.table.table)

    @property
    def stage_table(self) -> sql.Identifier:
        """The UNLOGGED staging table of this table."""
        return ident(CONTROL_SCHEMA, self.stage)

    @property
    def late_table(self) -> sql.Identifier:
        """The UNLOGGED table collecting references for the late-seed phase."""
        assert self.late is not None
        return ident(CONTROL_SCHEMA, self.late)

    # -- DDL ---------------------------------------------------------------------------------
    def stage_ddl(self) -> sql.Composed:
        """``CREATE UNLOGGED TABLE`` for the staging table: one typed column per layout slot."""
        columns = sql.SQL(", ").join(sql.SQL("{} {}").format(_c(slot), sql_type(column.data_type))
                                     for slot, column in enumerate(self.table.layout))
        return sql.SQL("CREATE UNLOGGED TABLE {} ({}){}").format(self.stage_table, columns, SCRATCH_TABLE)

    def late_ddl(self) -> sql.Composed:
        """``CREATE UNLOGGED TABLE`` for the late references: row key, flags and key atoms."""
        tp = self.table
        parts = [sql.SQL("{} {}").format(ident(f"t{i}"), sql_type(t)) for i, t in enumerate(tp.row_key_types)]
        parts += [sql.SQL("created boolean NOT NULL"), sql.SQL("sid text")]
        for gi in tp.deferred_groups:
            group = tp.groups[gi]
            parts.append(sql.SQL("{} boolean NOT NULL").format(ident(f"u{gi}")))
            parts += [sql.SQL("{} {}").format(ident(f"a{gi}_{j}"), sql_type(atom.data_type))
                      for j, atom in enumerate(group.atoms)]
        return sql.SQL("CREATE UNLOGGED TABLE {} ({}){}").format(self.late_table, sql.SQL(", ").join(parts),
                                                                  SCRATCH_TABLE)

    def copy_sql(self) -> sql.Composed:
        """``COPY stage (c0, ...) FROM STDIN`` (PostgreSQL text format)."""
        slots = self.copy_slots if self.copy_slots is not None else range(len(self.table.layout))
        columns = sql.SQL(", ").join(_c(slot) for slot in slots)
        return sql.SQL("COPY {} ({}) FROM STDIN").format(self.stage_table, columns)

    # -- expressions -------------------------------------------------------------------------
    def _present(self, gi: int, alias: str = "s") -> sql.Composable:
        group = self.table.groups[gi]
        if group.flag_slot is not None:
            return _c(group.flag_slot, alias)
        return sql.SQL("{} IS NOT NULL").format(_c(group.atom_slots[0], alias))

    def source_key(self, alias: str) -> sql.Composable:
        """The row's natural key as text (``sid``): the value, or a JSON array for several atoms."""
        exprs = [_c(slot, alias) for slot in self.table.key_slots]
        if len(exprs) == 1:
            return sql.SQL("({})::text").format(exprs[0])
        return sql.SQL("jsonb_build_array({})::text").format(sql.SQL(", ").join(exprs))

    def _missing_key(self, gi: int, alias: str) -> sql.Composable:
        group = self.table.groups[gi]
        return key_text((a.name for a in group.atoms), (_c(s, alias) for s in group.atom_slots))

    # -- the batch statements ----------------------------------------------------------------
    def resolve_sql(self) -> sql.Composed:
        """Resolve references and existing rows, decide each row's action (into ``mirror_res``)."""
        tp = self.table
        target_alias = "t"
        selects: list[sql.Composable] = [sql.SQL("{} AS {}").format(ident(target_alias, c), ident(f"e{i}"))
                                         for i, c in enumerate(tp.row_key)]
        selects += [_c(slot, "s") for slot in range(len(tp.layout))]
        joins: list[sql.Composable] = []
        for gi, group in enumerate(tp.groups):
            alias = f"g{gi}"
            selects += [sql.SQL("{} AS {}").format(ident(alias, f"r{k}"), ident(f"g{gi}_{k}"))
                        for k in range(len(group.columns))]
            selects.append(sql.SQL("({} AND {} IS NULL) AS {}").format(
                self._present(gi), ident(alias, "r0"), ident(f"u{gi}")))
            relation = self.plan.keys.key_relation(group.ref_table, group.spec.ref_columns,
                                                   schema_name=self.plan.schema)
            on = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident(alias, f"k{j}"), _c(slot, "s"))
                                       for j, slot in enumerate(group.atom_slots))
            joins.append(sql.SQL(" LEFT JOIN ({}) AS {} ON {}").format(relation, ident(alias), on))
        match = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(ident(target_alias, c), self._match_value(c)) for c in tp.natural_key)
        joins.append(sql.SQL(" LEFT JOIN {} AS {} ON {}").format(self.target, ident(target_alias), match))

        null_checks: list[sql.Composable] = []
        for kind, value in self.plan.keys.key_elements(tp.table):
            if kind == "column":
                null_checks.append(sql.SQL("{} IS NULL").format(_c(tp.plain_slot(value), "s")))
            else:
                gi = next(i for i, g in enumerate(tp.groups) if g.spec.name == value.name)
                null_checks.append(sql.SQL("NOT ({})").format(self._present(gi)))
        selects.append(sql.SQL("({}) AS nk_null").format(sql.SQL(" OR ").join(null_checks)))
        selects.append(sql.SQL("{} AS sid").format(self.source_key("s")))

        if self.mode == "upsert":
            changed = self._changed_expr(target_alias)
            selects.append(sql.SQL("{} AS changed").format(changed))
            selects.append(sql.SQL("CASE WHEN {} THEN to_jsonb({}.*) END AS before_image").format(
                changed, ident(target_alias)))
        else:
            selects.append(sql.SQL("false AS changed, NULL::jsonb AS before_image"))

        fail = [sql.SQL("q.nk_null")] + [ident("q", f"u{gi}") for gi, g in enumerate(tp.groups) if not g.deferred]
        action = sql.SQL(
            "CASE WHEN {fail} THEN 'failed' WHEN q.e0 IS NULL THEN 'created' WHEN {skip} THEN 'skipped' "
            "WHEN q.changed THEN 'updated' ELSE 'unchanged' END").format(
            fail=sql.SQL(" OR ").join(fail), skip=sql.SQL("true" if self.mode == "create_only" else "false"))
        if self.sequence is not None:
            keys = sql.SQL("CASE WHEN a.action = 'created' THEN nextval({}::regclass) ELSE q.e0 END AS t0").format(
                sql.Literal(self.sequence))
        elif self.key_from_natural_key:
            # e.g. project_members(project_id, user_id): a new row's key is its resolved natural key
            keys = sql.SQL(", ").join(
                sql.SQL("CASE WHEN a.action = 'created' THEN {} ELSE {} END AS {}").format(
                    self._natural_value(c, "q"), ident("q", f"e{i}"), ident(f"t{i}"))
                for i, c in enumerate(tp.row_key))
        else:
            keys = sql.SQL(", ").join(sql.SQL("{} AS {}").format(ident("q", f"e{i}"), ident(f"t{i}"))
                                      for i in range(len(tp.row_key)))
        inner = sql.SQL("SELECT {} FROM {} AS s{}").format(
            sql.SQL(", ").join(selects), self.stage_table, sql.Composed(joins))
        return sql.SQL("CREATE TEMP TABLE mirror_res ON COMMIT DROP AS SELECT q.*, a.action, {} "
                       "FROM ({}) AS q CROSS JOIN LATERAL (SELECT {} AS action) AS a").format(keys, inner, action)

    @property
    def key_from_natural_key(self) -> bool:
        """Whether every row-key column is a natural-key column (known before inserting)."""
        return set(self.table.row_key) <= set(self.table.natural_key)

    def _natural_value(self, column: str, alias: str) -> sql.Composable:
        """Target value of natural-key ``column`` in ``mirror_res`` (or its inner query)."""
        slot = self.table.plain_slot(column)
        if slot is not None:
            return _c(slot, alias)
        gi, k = self.table.group_of(column)  # type: ignore[misc]
        return ident(alias, f"g{gi}_{k}")

    def _match_value(self, column: str) -> sql.Composable:
        slot = self.table.plain_slot(column)
        if slot is not None:
            return _c(slot, "s")
        gi, k = self.table.group_of(column)  # type: ignore[misc]
        return ident(f"g{gi}", f"r{k}")

    def _changed_expr(self, target_alias: str) -> sql.Composable:
        tp = self.table
        olds: list[sql.Composable] = []
        news: list[sql.Composable] = []
        for slot, column in enumerate(tp.plain):
            if column.name in tp.natural_key:
                continue
            olds.append(comparable(ident(target_alias, column.name), column.data_type))
            news.append(comparable(_c(slot, "s"), column.data_type))
        for gi, group in enumerate(tp.groups):
            for k, column in enumerate(group.columns):
                if column in tp.natural_key:
                    continue
                olds.append(ident(target_alias, column))
                news.append(ident(f"g{gi}", f"r{k}"))
        parts: list[sql.Composable] = []
        if olds:
            parts.append(sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(
                sql.SQL(", ").join(olds), sql.SQL(", ").join(news)))
        # a late reference whose row does not exist yet is a change by definition: the target
        # cannot already point at a row that is only about to be created
        parts += [sql.SQL("({} AND {} IS NULL)").format(self._present(gi), ident(f"g{gi}", "r0"))
                  for gi in tp.deferred_groups]
        if not parts:
            return sql.SQL("false")
        return sql.SQL("({} IS NOT NULL AND ({}))").format(
            ident(target_alias, tp.row_key[0]), sql.SQL(" OR ").join(parts))

    def _group_value(self, gi: int, k: int) -> sql.Composable:
        group = self.table.groups[gi]
        value = ident("r", f"g{gi}_{k}")
        if not group.deferred:
            return value
        placeholder = self.placeholders.get(group.ref_table)
        if group.not_null and placeholder is not None:
            pending = sql.SQL("CAST({} AS {})").format(sql.Literal(placeholder[group.spec.ref_columns[k]]),
                                                       sql_type(group.column_types[k]))
        else:
            pending = sql.SQL("NULL::{}").format(sql_type(group.column_types[k]))
        return sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(ident("r", f"u{gi}"), pending, value)

    def insert_sql(self) -> sql.Composed:
        """Insert the ``created`` rows and write their new row keys back into ``mirror_res``."""
        tp = self.table
        columns = [c.name for c in tp.plain] + [c for g in tp.groups for c in g.columns]
        values = [_c(slot, "r") for slot in range(len(tp.plain))]
        values += [self._group_value(gi, k) for gi, g in enumerate(tp.groups) for k in range(len(g.columns))]
        if self.sequence is not None:
            return sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT r.t0, {} FROM mirror_res AS r "
                           "WHERE r.action = 'created'").format(
                self.target, ident_list([tp.row_key[0], *columns]), sql.SQL(", ").join(values))
        if self.key_from_natural_key:
            return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM mirror_res AS r WHERE r.action = 'created'").format(
                self.target, ident_list(columns), sql.SQL(", ").join(values))
        returning = [sql.SQL("{} AS {}").format(ident(c), ident(f"rk{i}")) for i, c in enumerate(tp.row_key)]
        returning += [sql.SQL("{} AS {}").format(ident(c), ident(f"nk{i}")) for i, c in enumerate(tp.natural_key)]
        sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(ident(f"t{i}"), ident("ins", f"rk{i}"))
                                  for i in range(len(tp.row_key)))
        match = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(self._natural_value(c, "r"), ident("ins", f"nk{i}"))
            for i, c in enumerate(tp.natural_key))
        return sql.SQL(
            "WITH ins AS (INSERT INTO {target} ({columns}) SELECT {values} FROM mirror_res AS r "
            "WHERE r.action = 'created' RETURNING {returning}) "
            "UPDATE mirror_res AS r SET {sets} FROM ins WHERE r.action = 'created' AND {match}").format(
            target=self.target, columns=ident_list(columns), values=sql.SQL(", ").join(values),
            returning=sql.SQL(", ").join(returning), sets=sets, match=match)

    def update_sql(self) -> sql.Composed | None:
        """Update the ``updated`` rows; late references keep their value until the late seed."""
        tp = self.table
        sets: list[sql.Composable] = []
        for slot, column in enumerate(tp.plain):
            if column.name not in tp.natural_key:
                sets.append(sql.SQL("{} = {}").format(ident(column.name), _c(slot, "r")))
        for gi, group in enumerate(tp.groups):
            for k, column in enumerate(group.columns):
                if column in tp.natural_key:
                    continue
                value = ident("r", f"g{gi}_{k}")
                if group.deferred:
                    value = sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(
                        ident("r", f"u{gi}"), ident("t", column), value)
                sets.append(sql.SQL("{} = {}").format(ident(column), value))
        if not sets:
            return None
        match = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("t", c), ident("r", f"t{i}"))
                                      for i, c in enumerate(tp.row_key))
        return sql.SQL("UPDATE {} AS t SET {} FROM mirror_res AS r WHERE r.action = 'updated' AND {}").format(
            self.target, sql.SQL(", ").join(sets), match)

    def audit_sql(self, *, run_id: str, profile: str, source_table: str, id_prefix: str) -> sql.Composed:
        """One ``import_records`` row per staged row, with the error text of failed rows.

        ``record_id`` is ``id_prefix`` (random per batch) plus the row number rather than the
        column default ``gen_random_uuid()``: strong randomness costs microseconds per row, and
        ascending keys append to the primary-key index instead of touching random pages.
        """
        tp = self.table
        reasons: list[sql.Composable] = [sql.SQL("CASE WHEN r.nk_null THEN {} END").format(
            sql.Literal(f"natural key ({', '.join(tp.key_atom_names)}) is NULL"))]
        for gi, group in enumerate(tp.groups):
            if group.deferred:
                continue
            prefix = (f"unresolved reference {tp.table}.{group.spec.label} -> {group.ref_table}: "
                      f"no row with natural key ")
            reasons.append(sql.SQL("CASE WHEN {} THEN {} || {} END").format(
                ident("r", f"u{gi}"), sql.Literal(prefix), self._missing_key(gi, "r")))
        error = sql.SQL("CASE WHEN r.action = 'failed' THEN concat_ws('; ', {}) END").format(
            sql.SQL(", ").join(reasons))
        target_id = id_text([ident("r", f"t{i}") for i in range(len(tp.row_key))])
        return sql.SQL(
            "INSERT INTO {audit} (record_id, run_id, profile, entity, source_table, source_id, target_table, "
            "target_id, action, error, before_image) "
            "SELECT ({prefix} || lpad(to_hex(row_number() OVER (ORDER BY r.sid)), 12, '0'))::uuid, "
            "{run}, {profile}, {entity}, {source}, r.sid, {entity}, "
            "CASE WHEN r.action <> 'failed' THEN {tid} END, r.action, {error}, "
            "CASE WHEN r.action = 'updated' THEN r.before_image END FROM mirror_res AS r").format(
            audit=AUDIT_TABLE, prefix=sql.Literal(id_prefix), run=sql.Literal(run_id), profile=sql.Literal(profile),
            entity=sql.Literal(tp.table), source=sql.Literal(source_table), tid=target_id, error=error)

    def late_sql(self) -> sql.Composed | None:
        """Keep created/updated rows whose late reference is still pending for the late seed."""
        tp = self.table
        if not tp.deferred_groups or self.late is None:
            return None
        columns = [ident(f"t{i}") for i in range(len(tp.row_key))] + [ident("created"), ident("sid")]
        values: list[sql.Composable] = [ident("r", f"t{i}") for i in range(len(tp.row_key))]
        values += [sql.SQL("r.action = 'created'"), ident("r", "sid")]
        pending: list[sql.Composable] = []
        for gi in tp.deferred_groups:
            group = tp.groups[gi]
            columns.append(ident(f"u{gi}"))
            values.append(ident("r", f"u{gi}"))
            pending.append(ident("r", f"u{gi}"))
            for j, slot in enumerate(group.atom_slots):
                columns.append(ident(f"a{gi}_{j}"))
                values.append(_c(slot, "r"))
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM mirror_res AS r "
                       "WHERE r.action IN ('created', 'updated') AND ({})").format(
            self.late_table, sql.SQL(", ").join(columns), sql.SQL(", ").join(values), sql.SQL(" OR ").join(pending))

    def errors_sql(self, limit: int) -> sql.Composed:
        """Failed rows as (natural key, column, referenced table, missing key) for the report."""
        tp = self.table
        parts = [sql.SQL("SELECT r.sid, {}, '', '' FROM mirror_res AS r WHERE r.nk_null").format(
            sql.Literal(", ".join(tp.key_atom_names)))]
        for gi, group in enumerate(tp.groups):
            if group.deferred:
                continue
            parts.append(sql.SQL("SELECT r.sid, {}, {}, {} FROM mirror_res AS r WHERE {}").format(
                sql.Literal(group.spec.label), sql.Literal(group.ref_table), self._missing_key(gi, "r"),
                ident("r", f"u{gi}")))
        return sql.SQL("{} LIMIT {}").format(sql.SQL(" UNION ALL ").join(parts), sql.Literal(limit))


class Loader:
    """Loads tables batch by batch into the target and then runs the late-seed phase.

    Usage: ``prepare()``; ``load_table``/``load_batches`` for every table of ``plan.order``
    (rows are text-format COPY lines in the staging layout), or :meth:`load_all` to load
    independent tables concurrently; ``finish()``; and always ``cleanup()``.

    ``conn`` is the main session (staging DDL, placeholders, late seed). ``connect`` opens
    further target sessions for concurrent loading; without it everything runs on ``conn``.
    """

    def __init__(self, conn: psycopg.Connection, plan: LoadPlan, *, mode: Mode, run_id: str, profile: str,
                 batch_rows: int, on_progress: ProgressCallback | None = None,
                 connect: Callable[[], psycopg.Connection] | None = None) -> None:
        if mode not in ("create_only", "upsert"):
            raise MirrorError(f"mode must be 'create_only' or 'upsert', not {mode!r}")
        if batch_rows < 1:
            raise MirrorError("batch_rows must be at least 1")
        self.conn = conn
        self.plan = plan
        self.mode = mode
        self.run_id = run_id
        self.profile = profile
        self.batch_rows = batch_rows
        self.on_progress = on_progress
        self.connect = connect
        self.report = MirrorReport(run_id=run_id, mode=mode, deferred_references=plan.describe(),
                                   warnings=list(plan.warnings),
                                   tables={table: TableReport(table) for table in plan.order})
        self.statements: dict[str, TableStatements] = {}
        self.placeholders: dict[str, dict[str, Any]] = {}
        self._created: list[str] = []
        self._refused: dict[str, int] = {}
        self._lock = threading.Lock()  # guards the shared report lists when tables load concurrently
        self._started = time.perf_counter()

    # -- sessions ----------------------------------------------------------------------------
    @staticmethod
    def configure(conn: psycopg.Connection) -> None:
        """Session settings for bulk work (temp_buffers only counts before the first temp table).

        Hash joins of a batch against big key relations spill to disk at the 4MB work_mem
        default, the per-batch resolution table spills at the 8MB temp_buffers default, and JIT
        compiling each batch's statements costs more than it saves on a few ten thousand rows.
        """
        configure_bulk_session(conn)

    def open_session(self) -> psycopg.Connection:
        """A further configured target session (the caller closes it)."""
        if self.connect is None:
            raise MirrorError("concurrent loading needs a connect function")
        conn = self.connect()
        self.configure(conn)
        return conn

    # -- phases ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Control schema, staging tables and (for NOT NULL late references) placeholder rows."""
        import uuid

        from import_pipelines.mirror.late_seed import create_placeholders

        self.configure(self.conn)
        ensure_control_schema(self.conn)
        tag = uuid.uuid4().hex[:10]
        with self.conn.transaction():
            for index, table in enumerate(self.plan.order):
                tp = self.plan.tables[table]
                statements = TableStatements(self.plan, tp, stage=f"mirror_{tag}_{index}_stage",
                                             late=f"mirror_{tag}_{index}_late" if tp.deferred_groups else None,
                                             mode=self.mode)
                self.statements[table] = statements
                if len(tp.row_key) == 1 and tp.plain_slot(tp.row_key[0]) is None and tp.group_of(tp.row_key[0]) is None:
                    # a surrogate key the data does not carry: draw its values from its own sequence
                    statements.sequence = self.conn.execute(
                        "SELECT pg_get_serial_sequence(%s, %s)",
                        (statements.target.as_string(self.conn), tp.row_key[0])).fetchone()[0]
                self.conn.execute(statements.stage_ddl())
                self._created.append(statements.stage)
                if statements.late:
                    self.conn.execute(statements.late_ddl())
                    self._created.append(statements.late)
        if self.plan.placeholder_tables:
            self.placeholders = create_placeholders(self.conn, self.plan)
            self.report.placeholders = sorted(self.placeholders)
        for statements in self.statements.values():
            statements.placeholders = self.placeholders

    def load_table(self, table: str, rows: Iterable[bytes | memoryview], *, source_table: str | None = None,
                   conn: psycopg.Connection | None = None) -> TableReport:
        """Load ``rows`` (one text-format COPY line each) into ``table`` in batches."""
        return self.load_batches(table, batched_rows(rows, self.batch_rows), source_table=source_table, conn=conn)

    def load_batches(self, table: str, batches: Iterable[list[bytes]], *, source_table: str | None = None,
                     conn: psycopg.Connection | None = None) -> TableReport:
        """Load already batched rows into ``table`` (one transaction per batch) on ``conn``."""
        conn = conn or self.conn
        report = self.report.tables[table]
        statements = self.statements[table]
        started = time.perf_counter()
        for batch in batches:
            if batch:
                self._load_rows(conn, statements, rows=batch, report=report, source_table=source_table or table)
        report.seconds += time.perf_counter() - started
        log.info("%s: %d rows, %d created, %d updated, %d skipped, %d unchanged, %d failed (%.0f rows/s)", table,
                 report.rows, report.created, report.updated, report.skipped, report.unchanged, report.failed,
                 report.rows_per_s)
        if self.on_progress:
            with self._lock:
                self.on_progress(report)
        return report

    def load_all(self, load: Callable[[str, psycopg.Connection], None], *, workers: int) -> None:
        """Call ``load(table, conn)`` for every table, up to ``workers`` tables at a time.

        A table starts once every table it references (other than through a late reference)
        has finished, so its references resolve; extra sessions come from ``connect``.
        """
        if workers <= 1 or self.connect is None or len(self.plan.order) == 1:
            for table in self.plan.order:
                load(table, self.conn)
            return
        sessions: list[psycopg.Connection] = []
        local = threading.local()

        def run(table: str) -> None:
            if getattr(local, "conn", None) is None:
                local.conn = self.open_session()
                with self._lock:
                    sessions.append(local.conn)
            load(table, local.conn)

        try:
            run_in_dependency_order(self.plan, run, workers=workers)
        finally:
            for session in sessions:
                session.close()

    def finish(self) -> MirrorReport:
        """Run the late-seed phase (one transaction) and close the report."""
        from import_pipelines.mirror.late_seed import late_seed

        late_seed(self)
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    def cleanup(self) -> None:
        """Drop the staging tables (also after a failure); never raises."""
        try:
            if self.conn.closed:
                return
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.rollback()
            with self.conn.transaction():
                for name in self._created:
                    self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(CONTROL_SCHEMA, name)))
            self._created.clear()
        except psycopg.Error as exc:  # the connection may be gone; the tables are UNLOGGED scratch
            log.warning("could not drop staging tables: %s", exc)

    # -- one batch ---------------------------------------------------------------------------
    def _load_rows(self, conn: psycopg.Connection, statements: TableStatements, *, rows: list[bytes],
                   report: TableReport, source_table: str) -> None:
        try:
            with conn.transaction():
                counts, problems = self._merge(conn, statements, rows=rows, source_table=source_table)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            # a row the target refuses (CHECK, length, a value COPY cannot parse): isolate it by
            # halving, so it becomes one failed audit row and the others still load
            if len(rows) == 1:
                self._record_row_failure(conn, statements, row=rows[0], exc=exc, report=report,
                                         source_table=source_table)
                return
            middle = len(rows) // 2
            self._load_rows(conn, statements, rows=rows[:middle], report=report, source_table=source_table)
            self._load_rows(conn, statements, rows=rows[middle:], report=report, source_table=source_table)
            return
        report.rows += len(rows)
        report.batches += 1
        for action, count in counts.items():
            report.add(action, count)
        with self._lock:
            self.report.error_count += counts.get("failed", 0)
            room = MAX_REPORTED_ERRORS - len(self.report.errors)
            self.report.errors.extend(problems[:max(room, 0)])

    def _merge(self, conn: psycopg.Connection, statements: TableStatements, *, rows: list[bytes],
               source_table: str) -> tuple[dict[str, int], list[ReferenceProblem]]:
        cur = conn.cursor()
        cur.execute(sql.SQL("TRUNCATE {}").format(statements.stage_table))
        with cur.copy(statements.copy_sql()) as copy:
            # a few large writes instead of one per row
            for start in range(0, len(rows), 2000):
                copy.write(b"".join(rows[start:start + 2000]))
        cur.execute(statements.resolve_sql())
        counts = dict(cur.execute("SELECT action, count(*) FROM mirror_res GROUP BY action").fetchall())
        if counts.get("created"):
            cur.execute(statements.insert_sql())
        if counts.get("updated"):
            update = statements.update_sql()
            if update is not None:
                cur.execute(update)
        cur.execute(statements.audit_sql(run_id=self.run_id, profile=self.profile, source_table=source_table,
                                         id_prefix=audit_id_prefix()))
        late = statements.late_sql()
        if late is not None and (counts.get("created") or counts.get("updated")):
            cur.execute(late)
        problems: list[ReferenceProblem] = []
        if counts.get("failed"):
            for sid, column, ref_table, missing in cur.execute(statements.errors_sql(100)).fetchall():
                message = (f"{statements.table.table}: natural key ({column}) is NULL" if not ref_table else
                           f"{statements.table.table} {sid}: {column} -> {ref_table} has no row with natural key "
                           f"{missing}")
                problems.append(ReferenceProblem(statements.table.table, sid, column, ref_table, missing, "load",
                                                 message))
        cur.execute("DROP TABLE mirror_res")
        return counts, problems

    def _record_row_failure(self, conn: psycopg.Connection, statements: TableStatements, *, row: bytes,
                            exc: psycopg.Error, report: TableReport, source_table: str) -> None:
        """Record one refused row as ``failed`` with the database's message (its own transaction)."""
        table = statements.table.table
        message = f"{table}: the target refused the row: {exc.diag.message_primary or exc}"
        if exc.diag.message_detail:
            message += f" ({exc.diag.message_detail})"
        sid: str | None = None
        try:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute(sql.SQL("TRUNCATE {}").format(statements.stage_table))
                with cur.copy(statements.copy_sql()) as copy:
                    copy.write(row)
                found = cur.execute(sql.SQL("SELECT {} FROM {} AS s").format(
                    statements.source_key("s"), statements.stage_table)).fetchone()
                sid = found[0] if found else None
                raise _Rollback
        except _Rollback:
            pass
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            sid = None  # the line itself cannot be parsed; name it by its text instead
        if sid is None:
            message += f"; line: {row[:200].decode('utf-8', 'replace').rstrip()}"
        with conn.transaction():
            conn.execute(sql.SQL(
                "INSERT INTO {} (run_id, profile, entity, source_table, source_id, target_table, action, error) "
                "VALUES ({}, {}, {}, {}, {}, {}, 'failed', {})").format(
                AUDIT_TABLE, sql.Literal(self.run_id), sql.Literal(self.profile), sql.Literal(table),
                sql.Literal(source_table), sql.Literal(sid), sql.Literal(table), sql.Literal(message)))
        report.rows += 1
        report.failed += 1
        with self._lock:
            self.report.error_count += 1
            refused = self._refused[table] = self._refused.get(table, 0) + 1
            if len(self.report.errors) < MAX_REPORTED_ERRORS:
                self.report.errors.append(ReferenceProblem(table, sid or "", "*", "", "", "load", message))
        if refused > MAX_ISOLATED_FAILURES:
            raise MirrorError(f"{table}: more than {MAX_ISOLATED_FAILURES} rows refused by the target; "
                              f"last error: {message}") from exc


def run_in_dependency_order(plan: LoadPlan, task: Callable[[str], None], *, workers: int) -> None:
    """Run ``task(table)`` for every table of the plan on up to ``workers`` threads.

    A table waits for the tables it references through non-late references; the first failure
    stops new tables from starting and is re-raised once the running ones have ended.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    waits_for = {table: {group.ref_table for group in plan.tables[table].groups
                         if not group.deferred and group.ref_table in plan.tables and group.ref_table != table}
                 for table in plan.order}
    done: set[str] = set()
    running: dict[Future[None], str] = {}
    pending = list(plan.order)
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mirror-load") as pool:
        while pending or running:
            if failure is None:
                for table in [t for t in pending if waits_for[t] <= done]:
                    if len(running) >= workers:
                        break
                    pending.remove(table)
                    running[pool.submit(task, table)] = table
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                table = running.pop(future)
                if future.exception() is not None and failure is None:
                    failure = future.exception()
                done.add(table)
            if failure is not None:
                pending.clear()
    if failure is not None:
        raise failure


class _Rollback(Exception):
    """Leave a transaction block without committing (psycopg rolls back on exceptions)."""
