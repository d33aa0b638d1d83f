"""The set-based merge: one range of staged rows into one target table, with its audit, atomically.

Per batch (a range of staging row numbers), one statement in one transaction:

1. classify every row (a materialised CTE): the target row it is (by natural key, or the row a
   duplicate check matched), the last imported hash, every reference resolved through its key
   relation, the errors, and the action the mode implies; new rows get their key allocated
   here, so the audit can name them without reading them back;
2. write the audit rows — every record the batch created, updated, skipped or failed, with the
   before-image of an updated row (unchanged records are only counted: the run summary holds them);
3. UPDATE the changed rows, INSERT the new ones, remember the hashes in ``record_state``, keep the
   references deferred to the late seed in ``pending_references``;
4. where :mod:`import_pipelines.engine.references` allows it, lock the distinct rows the batch
   points at ``FOR KEY SHARE`` and count them, in place of the per-row foreign-key triggers.

A row the database refuses although the set-based checks passed (a CHECK, a cast) is isolated
by halving the batch and recorded as ``failed``, so one bad row never sinks its neighbours; more
than :data:`MAX_ISOLATED` in one stream stop the load (:meth:`Merger.merge`). Transient failures
are retried without merging a batch twice (:func:`merge_with_retries`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg
import tenacity
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.transient import is_transient
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import RunRef
from import_pipelines.engine.plan import MergePlan, Ref

CONTROL = ident(CONTROL_SCHEMA)
MAX_ISOLATED = 100
MESSAGE_VALUE_CHARS = 80
_UNLOCKED = "unlocked:"
_NO_EQUALITY = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
RETRIES = 4
RETRY_WAIT_INITIAL_S = 0.25
RETRY_WAIT_MAX_S = 8.0


class EngineError(RuntimeError):
    """A load that cannot go on; the message says which table, column and why."""


@dataclass
class Progress:
    """How far the merge of one range got: its committed prefix ``(lo, done]``, what that prefix
    did, and the sub-range being committed now (a range with a refused row commits in pieces)."""

    done: int
    counts: Counter[str] = field(default_factory=Counter)
    inflight: tuple[int, int] | None = None


def comparable(expr: sql.Composable, data_type: str) -> sql.Composable:
    """``expr`` in a form that has an equality operator (json has none; compare it as jsonb)."""
    if data_type == "json":
        return sql.SQL("({})::jsonb").format(expr)
    if data_type.split("(")[0] in _NO_EQUALITY:
        return sql.SQL("({})::text").format(expr)
    return expr


def id_text(exprs: list[sql.Composable]) -> sql.Composable:
    """A row key as text: the value for one column, a JSON array for several."""
    if len(exprs) == 1:
        return sql.SQL("({})::text").format(exprs[0])
    return sql.SQL("jsonb_build_array({})::text").format(sql.SQL(", ").join(exprs))


def key_text(names: tuple[str, ...] | list[str], exprs: list[sql.Composable]) -> sql.Composable:
    """``{"atom": value, ...}`` as text: a natural key people can read in a message."""
    pairs = [sql.SQL("{}, {}").format(sql.Literal(name), expr) for name, expr in zip(names, exprs, strict=True)]
    return sql.SQL("jsonb_build_object({})::text").format(sql.SQL(", ").join(pairs))


def describe_error(error: psycopg.Error) -> str:
    """The database's message with its constraint, column and detail; long values cut short."""
    diag = error.diag
    parts = [_shorten(diag.message_primary or str(error)), diag.constraint_name and f"constraint {diag.constraint_name}",
             diag.column_name and f"column {diag.column_name}", diag.message_detail and _shorten(diag.message_detail)]
    return "; ".join(part for part in parts if part)


def _shorten(text: str) -> str:
    """Quoted values in a database message cut to :data:`MESSAGE_VALUE_CHARS` (a 5 MB bad value
    must not become a 5 MB error and log line)."""
    return re.sub(r'"((?:[^"\\]|\\.){%d,})"' % (MESSAGE_VALUE_CHARS + 1),
                  lambda match: f'"{match.group(1)[:MESSAGE_VALUE_CHARS]}…" ({len(match.group(1)):,} characters)',
                  text, flags=re.S)


class Merger:
    """Composes the statements of one plan once, then merges staged ranges with them."""

    def __init__(self, plan: MergePlan, *, staging: str | sql.Identifier, run: RunRef, stream_id: int | None,
                 streams: Mapping[str, int] | None = None, dry_run: bool = False, first_import: bool = False,
                 set_based_references: bool = False, placeholders: Mapping[str, Mapping[str, object]] | None = None,
                 predictions: sql.Composable | None = None):
        """``staging`` is a staging table's name in ``import_control`` (or any table as an identifier);
        ``stream_id`` None means the stream has no state yet (nothing is looked up in
        ``record_state``); a dry run writes its predictions to ``predictions`` (default
        ``import_control.dry_run_records``)."""
        self.plan = plan
        self.run = run
        self.stream_id = stream_id
        self.streams = dict(streams or {})
        self.dry_run = dry_run
        self.first_import = first_import
        # see engine/references.py: the batch locks and counts what it points at, the FK triggers are skipped
        self.set_based_references = set_based_references and not dry_run
        self.placeholders = dict(placeholders or {})
        self.isolated = 0
        # a few records against a large table: probe its indexes per record instead of hashing it
        # whole for every batch (set by the load when the batch is small beside the table)
        self.probe_joins = False
        self.staging = staging if isinstance(staging, sql.Identifier) else ident(CONTROL_SCHEMA, staging)
        self.predictions = predictions if predictions is not None else ident(CONTROL_SCHEMA, "dry_run_records")
        self.target = ident(plan.table.schema, plan.table.name)
        self._key_columns = {v.column for v in plan.key}
        # (reference, its column) for every reference column outside the natural key: what an update rewrites
        self._ref_columns = [(i, ref, k, column) for i, ref in enumerate(plan.refs)
                             for k, column in enumerate(ref.columns) if column not in self._key_columns]
        # whether a batch reads its records' state (and so the before-image of a changed record)
        self._reads_state = plan.change == "hash" and stream_id is not None and not first_import
        classify = self._classify()
        self._merge = self._statement(classify, locks=False)  # references checked by the FK triggers
        self._merge_locking = self._statement(classify, locks=True) if self.set_based_references else None

    # -- classification -----------------------------------------------------------------------
    def _row_key_type(self, i: int) -> sql.SQL:
        return sql.SQL(self.plan.table.key_type(i))

    def _row_id(self, alias: str, prefix: str) -> sql.Composable:
        """The row key held in ``alias.<prefix>0..``, as the audit names it (:func:`id_text`)."""
        return id_text([ident(alias, f"{prefix}{i}") for i in range(len(self.plan.table.row_key))])

    @staticmethod
    def _ref_join(ref: Ref, alias: str) -> sql.Composable:
        """`` LEFT JOIN`` the reference's key relation as ``alias`` on its staged key atoms."""
        on = sql.SQL(" AND ").join(sql.SQL("{}.{} = {}").format(ident(alias), ident(f"k{j}"), atom)
                                   for j, atom in enumerate(ref.atoms))
        return sql.SQL(" LEFT JOIN ({}) AS {} ON {}").format(ref.relation, ident(alias), on)

    def _resolved(self, i: int, ref: Ref, k: int) -> sql.Composable:
        """The value reference ``i`` writes into its ``k``-th column (NULL when unresolved)."""
        value: sql.Composable = ident(f"g{i}", f"r{k}")
        stream = self.streams.get(ref.ref_stream or "")
        if ref.follows_duplicates and len(ref.columns) == 1 and stream is not None:
            # a record deduplicated into another (or matched to an existing row) has no natural
            # key of its own in the target; record_state maps its source id to the row it
            # became. A scalar sub-query: COALESCE evaluates it only when the key lookup missed
            value = sql.SQL("COALESCE({}, (SELECT (rs.target_id)::{} FROM {}.record_state AS rs"
                            " WHERE rs.stream_id = {} AND rs.source_id = {}))").format(
                value, sql.SQL(ref.column_types[0]), CONTROL, sql.Literal(stream), ref.source_key)
        return value

    def _predicted(self, ref: Ref) -> sql.Composable:
        """Dry run: the record an upstream dry run predicts will exist resolves as it would for real."""
        if ref.ref_stream is None:
            return sql.SQL("false")
        return sql.SQL(
            "EXISTS (SELECT 1 FROM {} AS dk WHERE dk.run_id = %(run_id)s AND dk.profile = {}"
            " AND dk.entity = {} AND dk.source_id = {} AND dk.resolves)").format(
            self.predictions, sql.Literal(self.plan.profile), sql.Literal(ref.ref_stream), ref.source_key)

    def _classify(self) -> sql.Composed:
        p = self.plan
        table = p.table
        selects: list[sql.Composable] = [
            sql.SQL("s._rn, s._hash, s._error, s._dup_of, s._hold, s._confidence, s._match, s._source_ref,"
                    " {} AS _sid").format(p.source_id)]
        joins: list[sql.Composable] = []
        errors: list[sql.Composable] = [sql.SQL("y._error"), sql.SQL("y._keynull")]
        warnings: list[sql.Composable] = []
        for i, ref in enumerate(p.refs):
            joins.append(self._ref_join(ref, f"g{i}"))
            resolved = [self._resolved(i, ref, k) for k in range(len(ref.columns))]
            selects += [sql.SQL("{} AS {}").format(value, ident(f"_g{i}_{k}")) for k, value in enumerate(resolved)]
            unresolved = sql.SQL("({}) AND {} IS NULL").format(ref.present, resolved[0])
            if self.dry_run:
                unresolved = sql.SQL("{} AND NOT {}").format(unresolved, self._predicted(ref))
            selects.append(sql.SQL("CASE WHEN {} THEN {} END AS {}").format(unresolved, ref.describe_missing(ref.atoms),
                                                                           ident(f"_miss{i}")))
            if ref.required_message is not None:
                selects.append(sql.SQL("CASE WHEN NOT ({}) THEN {} END AS {}").format(
                    ref.present, sql.Literal(ref.required_message), ident(f"_req{i}")))
                errors.append(ident("y", f"_req{i}"))
            if ref.deferred:
                selects += [sql.SQL("({})::text AS {}").format(atom, ident(f"_a{i}_{j}"))
                            for j, atom in enumerate(ref.atoms)]
            elif ref.on_missing == "fail" or ref.required_message is not None:
                errors.append(ident("y", f"_miss{i}"))
            else:
                warnings.append(sql.SQL("{} || '; left empty'").format(ident("y", f"_miss{i}")))
        selects.append(sql.SQL("CASE WHEN {} THEN {} END AS _keynull").format(p.key_null, sql.Literal(p.key_message)))
        # a record the map step already rejected is never cast: its bad value is why it was rejected
        selects += [sql.SQL("CASE WHEN s._error IS NULL THEN ({})::{} END AS {}").format(
            v.expr, sql.SQL(table.columns[v.column].data_type), ident(f"_v{j}")) for j, v in enumerate(p.values)]
        selects += [sql.SQL("{} AS {}").format(v.expr, ident(f"_k{j}")) for j, v in enumerate(p.key)]
        # a first import: nothing of this source is in the table or the state yet, and the batches of
        # one run hold distinct source ids: looking each record up would only find nothing, at the
        # price of a join against a table that grows with every batch
        existing: list[sql.Composable] = [sql.SQL("NULL::{}").format(self._row_key_type(i)) if self.first_import
                                          else ident("t", column) for i, column in enumerate(table.row_key)]
        if p.dedupes and len(table.row_key) == 1:
            existing[0] = sql.SQL("COALESCE({}, (s._match_tid)::{})").format(existing[0], self._row_key_type(0))
        selects += [sql.SQL("{} AS {}").format(e, ident(f"_e{i}")) for i, e in enumerate(existing)]
        if not self.first_import:
            match = sql.SQL(" AND ").join(sql.SQL("t.{} = {}").format(ident(v.column), v.expr) for v in p.key)
            joins.append(sql.SQL(" LEFT JOIN {} AS t ON {}").format(self.target, match))
        if self._reads_state:
            joins.append(sql.SQL(" LEFT JOIN {}.record_state AS st ON st.stream_id = {} AND st.source_id = {}").format(
                CONTROL, sql.Literal(self.stream_id), p.source_id))
            selects.append(sql.SQL("st.source_hash AS _old_hash, st.target_id AS _old_tid,"
                                   " st.source_id IS NOT NULL AS _known"))
            if not self.dry_run:
                # the before-image of a changed record, from the row the key join already
                # read (a sync's batch is all changed records: no second probe per row)
                selects.append(sql.SQL("CASE WHEN st.source_hash IS DISTINCT FROM s._hash AND {} IS NOT NULL"
                                       " THEN to_jsonb(t.*) END AS _before").format(ident("t", table.row_key[0])))
        else:
            selects.append(sql.SQL("NULL::bytea AS _old_hash, NULL::text AS _old_tid, false AS _known"))
        if p.change == "columns":
            selects.append(sql.SQL("{} AS _changed").format(sql.SQL("false") if self.first_import else self._changed()))
        inner = sql.SQL("SELECT {} FROM {} AS s{} WHERE s._rn > %(lo)s AND s._rn <= %(hi)s").format(
            sql.SQL(", ").join(selects), self.staging, sql.Composed(joins))

        unchanged = {"hash": sql.SQL("z._old_hash = z._hash AND z._old_tid = {}").format(self._row_id("z", "_e")),
                     "columns": sql.SQL("NOT z._changed"), "none": sql.SQL("false")}[p.change]
        mode = sql.Literal(p.mode)
        middle = sql.SQL(
            "SELECT y.*, COALESCE(NULLIF(concat_ws('; ', {errors}), ''), %(forced)s::text) AS _err,"
            " {warning} AS _warning FROM ({inner}) AS y").format(
            errors=sql.SQL(", ").join(errors), inner=inner,
            warning=(sql.SQL("NULLIF(concat_ws('; ', {}), '')").format(sql.SQL(", ").join(warnings)) if warnings
                     else sql.SQL("NULL::text")))
        action = sql.SQL(
            "SELECT z.*, CASE"
            " WHEN z._dup_of IS NOT NULL THEN 'skipped'"
            " WHEN z._err IS NOT NULL THEN 'failed'"
            " WHEN z._hold IS NOT NULL THEN 'skipped'"
            " WHEN {mode} = 'create_new' THEN 'created'"
            " WHEN z._e0 IS NULL THEN CASE WHEN {mode} = 'update_only' THEN 'skipped' ELSE 'created' END"
            " WHEN {unchanged} THEN 'unchanged'"
            " WHEN {mode} = 'create_only' THEN 'skipped'"
            " ELSE 'updated' END AS _action FROM ({middle}) AS z").format(
            mode=mode, unchanged=unchanged, middle=middle)
        allocated = [sql.SQL("CASE WHEN x._action = 'created' THEN {} ELSE x.{} END AS {}").format(
            self._allocate(i), ident(f"_e{i}"), ident(f"_t{i}")) for i in range(len(table.row_key))]
        return sql.SQL("SELECT x.*, {} FROM ({}) AS x").format(sql.SQL(", ").join(allocated), action)

    def _allocate(self, i: int) -> sql.Composable:
        """A new row's key column ``i``: drawn from its sequence, its default, or its natural key."""
        table = self.plan.table
        column = table.row_key[i]
        if self.dry_run:
            return sql.SQL("NULL::{}").format(self._row_key_type(i))
        if len(table.row_key) == 1 and table.id_sequence:
            return sql.SQL("nextval({}::regclass)").format(sql.Literal(table.id_sequence))
        if len(table.row_key) == 1 and table.id_default:
            return sql.SQL("({})::{}").format(sql.SQL(table.id_default), self._row_key_type(0))
        for j, value in enumerate(self.plan.key):
            if value.column == column:
                return ident("x", f"_k{j}")
        raise EngineError(f"{table.qualified}: a new row's key column {column!r} has no sequence, no default and is not"
                          " part of the natural key, so the import cannot give new rows a key")

    def _changed(self) -> sql.Composable:
        """Whether the target row differs from what the batch would write (``columns`` detection)."""
        p = self.plan
        olds: list[sql.Composable] = []
        news: list[sql.Composable] = []
        for v in p.values:
            if v.column in self._key_columns:
                continue
            kind = p.table.columns[v.column].data_type
            olds.append(comparable(sql.SQL("t.{}").format(ident(v.column)), kind))
            news.append(comparable(sql.SQL("({})::{}").format(v.expr, sql.SQL(kind)), kind))
        for i, ref, k, column in self._ref_columns:
            olds.append(sql.SQL("t.{}").format(ident(column)))
            news.append(self._resolved(i, ref, k))
        # a late reference whose row does not exist yet is a change by definition: the
        # target cannot already point at a row that is only about to be created
        parts: list[sql.Composable] = [sql.SQL("(({}) AND {} IS NULL)").format(ref.present, ident(f"g{i}", "r0"))
                                       for i, ref in enumerate(p.refs) if ref.deferred]
        if olds:
            parts.insert(0, sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(
                sql.SQL(", ").join(olds), sql.SQL(", ").join(news)))
        if not parts:
            return sql.SQL("false")
        return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))

    # -- the writes ---------------------------------------------------------------------------
    def _ref_value(self, i: int, ref: Ref, k: int) -> sql.Composable:
        """What an insert writes for a reference column: a deferred one unresolved is NULL, or the
        placeholder row's key when its column is NOT NULL."""
        value = ident("b", f"_g{i}_{k}")
        if not ref.deferred:
            return value
        placeholder = self.placeholders.get(ref.table.qualified)
        pending: sql.Composable = sql.SQL("NULL::{}").format(sql.SQL(ref.column_types[k]))
        if ref.not_null and placeholder is not None:
            pending = sql.SQL("CAST({} AS {})").format(sql.Literal(placeholder[ref.ref_columns[k]]),
                                                       sql.SQL(ref.column_types[k]))
        return sql.SQL("CASE WHEN b.{} IS NOT NULL THEN {} ELSE {} END").format(ident(f"_miss{i}"), pending, value)

    def _row_match(self, alias: str) -> sql.Composable:
        return sql.SQL(" AND ").join(sql.SQL("{}.{} = b.{}").format(ident(alias), ident(c), ident(f"_t{i}"))
                                     for i, c in enumerate(self.plan.table.row_key))

    def _audit_sql(self) -> sql.Composed:
        before: sql.Composable = sql.SQL("(SELECT to_jsonb(t.*) FROM {} AS t WHERE {})").format(
            self.target, self._row_match("t"))
        # the before-image is one key probe per updated row, never a join over the table, unless
        # the classification read it already (a changed hash)
        if self._reads_state:
            before = sql.SQL("COALESCE(b._before, {})").format(before)
        return sql.SQL(
            "INSERT INTO {control}.audit_records (run_seq, stream_id, record_no, action, source_id, source_ref,"
            " source_hash, target_id, duplicate_of, confidence, match_fields, error, before_image, run_day)"
            " SELECT {run}, {stream}, b._rn, b._action, b._sid, b._source_ref, b._hash,"
            " CASE WHEN b._t0 IS NOT NULL THEN {tid} END, b._dup_of, b._confidence, b._match,"
            " COALESCE(b._err, b._hold, b._warning), CASE WHEN b._action = 'updated' THEN {before} END, {day}"
            " FROM b WHERE b._action <> 'unchanged'").format(
            control=CONTROL, run=sql.Literal(self.run.run_seq), stream=sql.Literal(self.stream_id),
            tid=self._row_id("b", "_t"), before=before, day=sql.Literal(self.run.run_day))

    def _update_sql(self) -> sql.Composed:
        p = self.plan
        sets = [sql.SQL("{} = b.{}").format(ident(v.column), ident(f"_v{j}")) for j, v in enumerate(p.values)
                if v.column not in self._key_columns]
        for i, ref, k, column in self._ref_columns:
            value: sql.Composable = ident("b", f"_g{i}_{k}")
            if ref.deferred:  # keeps its value until the late seed resolves it
                value = sql.SQL("CASE WHEN b.{} IS NOT NULL THEN t.{} ELSE {} END").format(
                    ident(f"_miss{i}"), ident(column), value)
            sets.append(sql.SQL("{} = {}").format(ident(column), value))
        sets += [sql.SQL("{} = now()").format(ident(c)) for c in p.touch]
        if not sets:
            return sql.SQL("SELECT 1")
        return sql.SQL("UPDATE {} AS t SET {} FROM b WHERE b._action = 'updated' AND {}").format(
            self.target, sql.SQL(", ").join(sets), self._row_match("t"))

    def _insert_sql(self) -> sql.Composed:
        p = self.plan
        table = p.table
        columns = [c for c in table.row_key if c not in p.written_columns]
        values: list[sql.Composable] = [ident("b", f"_t{i}") for i, c in enumerate(table.row_key) if c in columns]
        plain = {v.column for v in p.values} | {c for ref in p.refs for c in ref.columns}
        for j, v in enumerate(p.key):
            if v.column not in plain:  # a key column written from the key alone
                columns.append(v.column)
                values.append(sql.SQL("NULL") if p.mode == "create_new" and v.column in p.unlinked_key
                              else sql.SQL("(b.{})::{}").format(ident(f"_k{j}"), sql.SQL(table.columns[v.column].data_type)))
        columns += [v.column for v in p.values]
        values += [ident("b", f"_v{j}") for j in range(len(p.values))]
        for i, ref in enumerate(p.refs):
            columns += ref.columns
            values += [self._ref_value(i, ref, k) for k in range(len(ref.columns))]
        overriding = (sql.SQL(" OVERRIDING SYSTEM VALUE")
                      if any(table.columns[c].identity == "always" for c in columns) else sql.SQL(""))
        return sql.SQL("INSERT INTO {} ({}){} SELECT {} FROM b WHERE b._action = 'created'").format(
            self.target, sql.SQL(", ").join(ident(c) for c in columns), overriding, sql.SQL(", ").join(values))

    def _state_sql(self) -> tuple[sql.Composable, sql.Composable]:
        if self.plan.change != "hash":
            return sql.SQL("SELECT 1"), sql.SQL("SELECT 1")
        select = sql.SQL(
            "INSERT INTO {control}.record_state (stream_id, source_id, target_id, source_hash, run_seq)"
            " SELECT {stream}, b._sid, {tid}, b._hash, {run} FROM b WHERE b._action IN ('created', 'updated')"
            " AND {known}").format
        names = dict(control=CONTROL, stream=sql.Literal(self.stream_id), tid=self._row_id("b", "_t"),
                     run=sql.Literal(self.run.run_seq))
        # new source ids: a plain INSERT. Known ones (changed rows, the few): ON CONFLICT, which
        # probes the primary key per row; an UPDATE ... FROM the CTE is at the planner's mercy
        insert = select(known=sql.SQL("NOT b._known"), **names)
        restate = sql.SQL("{} ON CONFLICT (stream_id, source_id) DO UPDATE SET target_id = EXCLUDED.target_id,"
                          " source_hash = EXCLUDED.source_hash, duplicate_of = NULL, run_seq = EXCLUDED.run_seq").format(
            select(known=sql.SQL("b._known"), **names))
        return insert, restate

    def _pending_sql(self) -> sql.Composable:
        parts = []
        row_key = sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(
            sql.SQL("(b.{})::text").format(ident(f"_t{i}")) for i in range(len(self.plan.table.row_key))))
        for i, ref in enumerate(self.plan.refs):
            if not ref.deferred:
                continue
            atoms = sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(ident("b", f"_a{i}_{j}")
                                                                    for j in range(len(ref.atoms))))
            parts.append(sql.SQL(
                "SELECT %(run_group)s, {stream}, {name}, {row_key}, {atoms}, b._sid, b._action = 'created'"
                " FROM b WHERE b._action IN ('created', 'updated') AND b.{miss} IS NOT NULL").format(
                stream=sql.Literal(self.stream_id), name=sql.Literal(ref.name), row_key=row_key, atoms=atoms,
                miss=ident(f"_miss{i}")))
        if not parts:
            return sql.SQL("SELECT 1")
        return sql.SQL("INSERT INTO {}.pending_references (run_group, stream_id, reference, row_key, atoms, source_id,"
                       " created) {}").format(CONTROL, sql.SQL(" UNION ALL ").join(parts))

    def _locks_sql(self) -> tuple[sql.Composable, sql.Composable]:
        """Per checked reference, the distinct values written less the rows found and locked FOR KEY SHARE.

        Zero for every reference means each row the batch points at exists and stays until commit.
        A row deleted after the statement's snapshot was taken is not returned by the lock.
        """
        ctes, rows = [], []
        for i, ref in enumerate(self.plan.refs):
            ids = ident(f"_ids{i}")
            values = [ident("b", f"_g{i}_{k}") for k in range(len(ref.columns))]
            ctes.append(sql.SQL(", {ids} AS (SELECT DISTINCT {values} FROM b WHERE b._action IN ('created', 'updated')"
                                " AND {present})").format(
                ids=ids, values=sql.SQL(", ").join(sql.SQL("{} AS {}").format(v, ident(f"v{k}"))
                                                   for k, v in enumerate(values)),
                present=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(v) for v in values)))
            rows.append(sql.SQL(
                " UNION ALL SELECT {key}, (SELECT count(*) FROM {ids}) - (SELECT count(*) FROM"
                " (SELECT 1 FROM {table} AS r WHERE ({cols}) IN (SELECT {vs} FROM {ids}) FOR KEY SHARE OF r) AS l)").format(
                key=sql.Literal(f"{_UNLOCKED}{i}"), ids=ids, table=ident(ref.table.schema, ref.table.name),
                cols=sql.SQL(", ").join(ident("r", c) for c in ref.ref_columns),
                vs=sql.SQL(", ").join(ident(f"v{k}") for k in range(len(ref.columns)))))
        return sql.SQL("").join(ctes), sql.SQL("").join(rows)

    def _statement(self, classify: sql.Composable, *, locks: bool) -> sql.Composed:
        lock_ctes, lock_rows = self._locks_sql() if locks else (sql.SQL(""), sql.SQL(""))
        if self.dry_run:
            # classify only: the predicted action of every record goes to dry_run_records, the
            # target tables and the audit are not touched
            writes = sql.SQL(
                "predicted AS (INSERT INTO {} (run_id, profile, entity, source_id, action, target_id, duplicate_of,"
                " confidence, error, resolves) SELECT %(run_id)s, {}, {}, b._sid, b._action, {}, b._dup_of,"
                " b._confidence, COALESCE(b._err, b._hold, b._warning), b._action IN ('created', 'updated',"
                " 'unchanged') FROM b)").format(self.predictions, sql.Literal(self.plan.profile),
                                                sql.Literal(self.plan.entity), self._row_id("b", "_e"))
        else:
            # one statement: every part reads the same snapshot, so the audit's before-images are
            # the rows as they were before this batch's UPDATE, and the classification is computed once
            insert_state, update_state = self._state_sql()
            writes = sql.SQL("audit AS ({}), upd AS ({}), ins AS ({}), state_new AS ({}), state_old AS ({}),"
                             " pending AS ({})").format(self._audit_sql(), self._update_sql(), self._insert_sql(),
                                                        insert_state, update_state, self._pending_sql())
        return sql.SQL("WITH b AS MATERIALIZED ({}), {}{} SELECT b._action, count(*) FROM b GROUP BY b._action{}"
                       ).format(classify, writes, lock_ctes, lock_rows)

    # -- execution ----------------------------------------------------------------------------
    def merge(self, conn: psycopg.Connection, lo: int, hi: int, *,
              on_isolated: Callable[[int, str | None, str], None] | None = None,
              progress: Progress | None = None) -> Counter[str]:
        """Merge staging rows ``lo < _rn <= hi``; isolate rows the database refuses. Returns counts by action.

        ``on_isolated(row number, source id, message)`` hears of every row isolated as refused.
        ``progress`` follows the transactions as they commit, in row order.
        """
        try:
            return self._commit(conn, lo, hi, progress=progress)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as error:
            if hi - lo == 1:
                message = self._explain(conn, hi, error)
                self.isolated += 1
                if self.isolated > MAX_ISOLATED:
                    raise EngineError(
                        f"{self.plan.table.qualified}: more than {MAX_ISOLATED} rows of {self.plan.entity!r}"
                        f" refused by the database, so the load stopped instead of isolating every row; the last:"
                        f" {message}") from None
                if on_isolated:
                    sid = conn.execute(sql.SQL("SELECT {} FROM {} AS s WHERE s._rn = %s").format(
                        self.plan.source_id, self.staging), (hi,)).fetchone()
                    on_isolated(hi, sid[0] if sid else None, message)
                return self._commit(conn, lo, hi, progress=progress, forced_error=message)
            middle = (lo + hi) // 2
            counts = self.merge(conn, lo, middle, on_isolated=on_isolated, progress=progress)
            counts.update(self.merge(conn, middle, hi, on_isolated=on_isolated, progress=progress))
            return counts

    def _commit(self, conn: psycopg.Connection, lo: int, hi: int, *, progress: Progress | None,
                forced_error: str | None = None) -> Counter[str]:
        """Merge ``lo < _rn <= hi`` in one transaction; ``progress`` knows it while it commits."""
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            # a session out of autocommit holds a transaction opened by what it read since its last
            # batch (the load's own reads, a refused row's source id): end it, so that the batch is
            # a transaction of its own, committed as it ends, and a retry's rollback takes nothing
            # already counted as committed with it (inside an open transaction it was a savepoint)
            conn.commit()
        if progress is not None:
            progress.inflight = (lo, hi)
        params = {"lo": lo, "hi": hi, "run_id": self.run.run_id, "run_group": self.run.run_group,
                  "forced": forced_error}
        for statement in filter(None, [self._merge_locking, self._merge]):
            with conn.transaction():
                if self.probe_joins:
                    conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
                if statement is self._merge_locking:
                    conn.execute("SET LOCAL session_replication_role = replica")
                counts = Counter(dict(conn.execute(statement, params).fetchall()))
                if not any(counts.pop(key) for key in [k for k in counts if k.startswith(_UNLOCKED)]):
                    break  # committed
                # a row the batch references was deleted between the statement's snapshot and its lock:
                # this batch again, checked by the triggers
                raise psycopg.Rollback()
        if progress is not None:
            progress.done, progress.inflight = hi, None
            progress.counts.update(counts)
        return counts

    def _explain(self, conn: psycopg.Connection, rn: int, error: psycopg.Error) -> str:
        """The database's message for one refused row, naming the field when a value does not cast."""
        message = describe_error(error)
        if not isinstance(error, psycopg.errors.DataError) or error.diag.column_name:
            return message
        for value in self.plan.values:
            kind = self.plan.table.columns[value.column].data_type
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("SELECT ({})::{} FROM {} AS s WHERE s._rn = %s").format(
                        value.expr, sql.SQL(kind), self.staging), (rn,))
            except psycopg.errors.DataError:
                return f"{value.column}: {message}"
        return message

    def predict_duplicates(self, conn: psycopg.Connection) -> None:
        """Dry run, once every batch is classified: a duplicate resolves (for references) when its survivor does."""
        conn.execute(sql.SQL(
            "UPDATE {predictions} AS d SET resolves = true FROM {staging} AS s"
            " JOIN {predictions} AS sv ON sv.run_id = %(run)s AND sv.profile = %(profile)s"
            " AND sv.entity = %(entity)s AND sv.source_id = s._dup_of AND sv.resolves"
            " WHERE d.run_id = %(run)s AND d.profile = %(profile)s AND d.entity = %(entity)s"
            " AND d.source_id = {sid} AND s._dup_of IS NOT NULL AND NOT d.resolves").format(
            predictions=self.predictions, staging=self.staging, sid=self.plan.source_id),
            {"run": self.run.run_id, "profile": self.plan.profile, "entity": self.plan.entity})

    def problems(self, conn: psycopg.Connection, lo: int, hi: int, *, limit: int) -> list[tuple[str, str, str, str]]:
        """Why rows of a merged range failed, structured: (source id, columns, referenced table, missing key).

        An incomplete natural key has no referenced table. Read after the merge, from the staged
        rows and the key relations (the audit rows hold the same as text).
        """
        p = self.plan
        in_range = sql.SQL("s._rn > %(lo)s AND s._rn <= %(hi)s")
        parts: list[sql.Composable] = [sql.SQL("SELECT {}, {}, '', '' FROM {} AS s WHERE {} AND {}").format(
            p.source_id, sql.Literal(", ".join(v.column for v in p.key)), self.staging, p.key_null, in_range)]
        for ref in p.refs:
            if not ref.deferred:
                parts.append(sql.SQL("SELECT {}, {}, {}, {} FROM {} AS s{} WHERE ({}) AND g.r0 IS NULL AND {}").format(
                    p.source_id, sql.Literal(ref.label), sql.Literal(ref.table.name),
                    key_text(ref.atom_names, list(ref.atoms)), self.staging, self._ref_join(ref, "g"), ref.present,
                    in_range))
        return conn.execute(sql.SQL("{} LIMIT {}").format(sql.SQL(" UNION ALL ").join(parts), sql.Literal(limit)),
                            {"lo": lo, "hi": hi}).fetchall()

    def committed(self, conn: psycopg.Connection, lo: int, hi: int) -> Counter[str] | None:
        """The counts of a batch that already committed (its audit rows exist), else ``None``.

        After a dropped connection a batch may or may not have committed; its audit rows (written
        in the same transaction) tell which. Unchanged records leave no audit row, so a committed
        batch's unchanged count is the rest of its range.
        """
        rows = conn.execute(sql.SQL(
            "SELECT action, count(*) FROM {}.audit_records WHERE run_day = %s AND run_seq = %s AND stream_id = %s"
            " AND record_no > %s AND record_no <= %s GROUP BY action").format(CONTROL),
            (self.run.run_day, self.run.run_seq, self.stream_id, lo, hi)).fetchall()
        conn.rollback()  # the read's transaction, if the session opened one
        if not rows:
            return None
        counts = Counter(dict(rows))
        counts["unchanged"] += (hi - lo) - sum(counts.values())
        return counts


def merge_with_retries(merger: Merger, session: Callable[[], psycopg.Connection],
                       reconnect: Callable[[], psycopg.Connection], lo: int, hi: int, *,
                       on_isolated: Callable[[int, str | None, str], None] | None = None,
                       on_retry: Callable[[int, BaseException], None] | None = None) -> Counter[str]:
    """:meth:`Merger.merge` with transient failures (:func:`~import_pipelines.db.transient.is_transient`)
    retried on a fresh session, with exponential backoff and jitter (tenacity).

    ``session()`` is the connection to use now; ``reconnect()`` replaces a broken one. A retry
    goes on from what had committed: the range's committed prefix is known as it commits, and
    the transaction that was committing when the connection dropped is looked up by its audit
    rows (:meth:`Merger.committed`). So no row and no audit row is written twice.
    """
    progress = Progress(done=lo)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient), stop=tenacity.stop_after_attempt(RETRIES + 1),
        wait=tenacity.wait_exponential_jitter(multiplier=RETRY_WAIT_INITIAL_S, max=RETRY_WAIT_MAX_S,
                                              jitter=RETRY_WAIT_INITIAL_S),
        before_sleep=(lambda state: on_retry(state.attempt_number, state.outcome.exception())) if on_retry else None,
        reraise=True)
    for attempt in retrying:
        with attempt:
            conn = session()
            if attempt.retry_state.attempt_number > 1:  # a working session, and did the interrupted commit go through?
                if conn.closed or conn.broken:
                    conn = reconnect()
                conn.rollback()  # what the interrupted attempt left open (a no-op on an idle session)
                if progress.inflight is not None and (done := merger.committed(conn, *progress.inflight)) is not None:
                    progress.done = progress.inflight[1]
                    progress.counts.update(done)
                progress.inflight = None
            if progress.done < hi:
                merger.merge(conn, progress.done, hi, on_isolated=on_isolated, progress=progress)
    return progress.counts
