"""The set-based merge: one staged batch into one target table, with its audit rows, atomically.

Per batch (a range of staging row numbers) in one transaction:
1. classify every row (a materialised CTE): source id, the existing target row (by natural key),
   the last imported hash (to compare with the staged row's ``_hash``), resolved references (by natural key),
   errors, and the action the mode implies; new rows get their primary key allocated here so
   audit rows can name them without a round trip;
2. write the audit rows (before-images of rows about to be updated);
3. UPDATE the changed rows, INSERT the new ones, remember the hashes in ``record_state``;
4. where :mod:`import_pipelines.load.references` allows it, lock the distinct rows the batch
   points at ``FOR KEY SHARE`` and count them, in place of the per-row foreign-key triggers.

A constraint the set-based checks did not foresee (a CHECK, a cast) fails the statement; the
batch is then split in halves until the offending rows are isolated and recorded as ``failed``
with the database's message, so one bad row never sinks its neighbours.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

import psycopg
from psycopg import sql

from import_pipelines.db.sql import ident
from import_pipelines.control import CONTROL_SCHEMA as CONTROL
from import_pipelines.load.plan import LoadPlan



_UNLOCKED = "unlocked:"


class _ReferenceGone(Exception):
    """A row a batch references was deleted between the batch's snapshot and its lock."""


def staging_table_name(plan: LoadPlan, run_id: str) -> str:
    """The staging table of one entity in one run (inside ``import_control``)."""
    return f"stg_{plan.profile}_{plan.entity_name}_{run_id.replace('-', '')[:12]}"[:63]


class Merger:
    """Compiles the merge statements of one plan once, then runs them per batch."""

    def __init__(self, plan: LoadPlan, *, staging: str, run_id: str, dry_run: bool = False,
                 first_import: bool = False, set_based_references: bool = False):
        self.plan = plan
        self.dry_run = dry_run
        self.first_import = first_import
        # see load/references.py: the batch locks and counts what it points at, the FK triggers are skipped
        self.set_based_references = set_based_references and not dry_run
        self.run_id = run_id
        self.staging = ident(CONTROL, staging)
        self._classify = self._classify_sql()
        self._audit = self._audit_sql()
        self._update = self._update_sql()
        self._insert = self._insert_sql()
        self._state = self._state_sql()
        self._merge = self._dry_run_statement() if dry_run else self._statement(locks=self.set_based_references)
        self._merge_under_triggers = self._statement(locks=False) if self.set_based_references else self._merge

    # -- SQL ----------------------------------------------------------------------------------
    def _lit(self, value: object) -> sql.Literal:
        return sql.Literal(value)

    def _classify_sql(self) -> sql.Composed:
        p = self.plan
        nk = p.template.natural_key
        table = ident(p.table.schema, p.table.name)
        pk = ident(p.table.primary_key)
        system = self._lit(p.source_system)
        sid = sql.SQL("(s.{})::text").format(ident(p.entity.source_id))
        ref_cols, ref_joins, errors, warnings = [], [], [sql.SQL("s._error")], []
        for i, ref in enumerate(p.references):
            if ref.late:
                # resolved by late_seed once every entity is loaded; recorded in the pending CTE
                ref_cols.append(sql.SQL("NULL::{} AS {}").format(sql.SQL(ref.table.columns[ref.table.primary_key].type),
                                                                 ident(f"_ref{i}")))
                continue
            alias = f"r{i}"
            carrier = sql.SQL("(s.{})::text").format(ident(ref.field))
            resolved = sql.SQL("{}.{}").format(ident(alias), ident(ref.table.primary_key))
            ref_joins.append(sql.SQL(" LEFT JOIN {} AS {} ON {}.{} = {} AND {}.{} = {}").format(
                ident(ref.table.schema, ref.table.name), ident(alias), ident(alias), ident(nk.system_column), system,
                ident(alias), ident(nk.id_column), carrier))
            if ref.via_state:
                # a record deduplicated into another (or matched to an existing row) has no natural
                # key of its own in the target; record_state maps its source id to the row it
                # became. A scalar sub-query: COALESCE evaluates it only when the key lookup missed
                resolved = sql.SQL(
                    "COALESCE({}, (SELECT (rs.target_id)::{} FROM {}.record_state AS rs WHERE rs.profile = {}"
                    " AND rs.entity = {} AND rs.source_id = {}))").format(
                    resolved, sql.SQL(ref.table.columns[ref.table.primary_key].type), ident(CONTROL),
                    self._lit(p.profile), self._lit(ref.entity), carrier)
            if self.dry_run:
                # nothing upstream was written in a dry run: a record the upstream dry run predicts
                # will exist resolves as it would in the real run (a stand-in id, never written)
                predicted = sql.SQL(
                    "EXISTS (SELECT 1 FROM {control}.dry_run_records AS dk WHERE dk.run_id = %(run_id)s"
                    " AND dk.profile = {profile} AND dk.entity = {entity} AND dk.source_id = {carrier} AND dk.resolves)"
                ).format(control=ident(CONTROL), profile=self._lit(p.profile), entity=self._lit(ref.entity),
                         carrier=carrier)
                resolved = sql.SQL("COALESCE({}, CASE WHEN {} THEN -1 END)").format(resolved, predicted)
            ref_cols.append(sql.SQL("{} AS {}").format(resolved, ident(f"_ref{i}")))
            if ref.required:
                errors.append(sql.SQL("CASE WHEN {c} IS NULL THEN {m} END").format(
                    c=carrier, m=self._lit(f"{ref.column}: required reference ({ref.field}) is empty")))
            missing = sql.SQL("{c} IS NOT NULL AND {r} IS NULL").format(c=carrier, r=resolved)
            message = sql.SQL("({} || {})").format(self._lit(f"{ref.column}: no {ref.entity} with {nk.id_column} "),
                                                    carrier)
            if ref.required or ref.on_missing == "fail":
                errors.append(sql.SQL("CASE WHEN {} THEN {} END").format(missing, message))
            else:
                warnings.append(sql.SQL("CASE WHEN {} THEN {} || '; left empty' END").format(missing, message))
        mode = self._lit(p.mode)
        allocator = (sql.SQL("NULL") if self.dry_run
                     else sql.SQL("nextval({}::regclass)").format(self._lit(p.table.id_sequence)) if p.table.id_sequence
                     else sql.SQL(p.table.id_default or "NULL"))
        if self.first_import:
            # nothing of this source is in the table or the state yet, and the batches of one run
            # hold distinct source ids: looking each record up would only find nothing, at the
            # price of a join against a table that grows with every batch
            known = "(s._match_tid)::{pk_type} AS _tid, NULL::text AS _old_hash, NULL::text AS _old_tid"
            lookups = ""
        else:
            known = ("COALESCE(t.{pk}, (s._match_tid)::{pk_type}) AS _tid, st.source_hash AS _old_hash,"
                     " st.target_id AS _old_tid")
            lookups = (" LEFT JOIN {table} AS t ON t.{nk_sys} = {system} AND t.{nk_id} = {sid}"
                       " LEFT JOIN {control}.record_state AS st ON st.profile = {profile} AND st.entity = {entity}"
                       " AND st.source_id = {sid}")
        inner = sql.SQL(
            "SELECT s.*, {sid} AS _sid, " + known + "{ref_cols},"
            " COALESCE(NULLIF(concat_ws('; ', {errors}), ''), %(forced)s::text) AS _err,"
            " {warning} AS _warning"
            " FROM {staging} AS s" + lookups + "{ref_joins}"
            " WHERE s._rn > %(lo)s AND s._rn <= %(hi)s"
        ).format(
            sid=sid, pk=pk, pk_type=sql.SQL(p.table.columns[p.table.primary_key].type), ref_cols=sql.SQL("").join(sql.SQL(", ") + c for c in ref_cols),
            errors=sql.SQL(", ").join(errors),
            warning=(sql.SQL("NULLIF(concat_ws('; ', {}), '')").format(sql.SQL(", ").join(warnings)) if warnings
                     else sql.SQL("NULL::text")),
            staging=self.staging, table=table, nk_sys=ident(nk.system_column), nk_id=ident(nk.id_column),
            system=system, control=ident(CONTROL), profile=self._lit(p.profile), entity=self._lit(p.entity_name),
            ref_joins=sql.SQL("").join(ref_joins))
        return sql.SQL(
            "SELECT x.*, CASE WHEN x._action = 'created' THEN {allocator} END AS _new_id FROM ("
            " SELECT y.*, CASE"
            "  WHEN y._dup_of IS NOT NULL THEN 'skipped'"
            "  WHEN y._err IS NOT NULL THEN 'failed'"
            "  WHEN %(forced)s::text IS NOT NULL THEN 'failed'"
            "  WHEN {mode} = 'create_new' THEN 'created'"
            "  WHEN y._tid IS NULL THEN CASE WHEN {mode} = 'update_only' THEN 'skipped' ELSE 'created' END"
            "  WHEN y._old_hash = y._hash AND y._old_tid = y._tid::text THEN 'unchanged'"
            "  WHEN {mode} = 'create_only' THEN 'skipped'"
            "  ELSE 'updated' END AS _action"
            " FROM ({inner}) AS y) AS x"
        ).format(allocator=allocator, mode=mode, inner=inner)

    def _audit_sql(self) -> sql.Composed:
        p = self.plan
        # the before-image is one primary-key probe per updated row, never a join over the table;
        # record ids are a random per-batch prefix plus the staging row number (unique within the
        # batch, and no window aggregate to number the rows): cheaper than a random UUID per row,
        # and ascending, so the primary-key index grows at its right edge
        return sql.SQL(
            "INSERT INTO {control}.import_records (record_id, run_id, profile, entity, source_table, source_id, source_hash,"
            " target_table, target_id, action, duplicate_of, confidence, match_fields, error, before_image)"
            " SELECT (%(id_prefix)s || lpad(to_hex(b._rn), 12, '0'))::uuid,"
            " %(run_id)s, {profile}, {entity}, {source_table}, b._sid, b._hash, {target_name},"
            " COALESCE(b._new_id, b._tid)::text, b._action, b._dup_of, b._confidence,"
            " b._match, COALESCE(b._err, b._warning),"
            " CASE WHEN b._action = 'updated' THEN (SELECT to_jsonb(t.*) FROM {table} AS t WHERE t.{pk} = b._tid) END"
            " FROM b"
        ).format(control=ident(CONTROL), profile=self._lit(p.profile), entity=self._lit(p.entity_name),
                 source_table=self._lit(p.source_table), target_name=self._lit(p.table.qualified),
                 table=ident(p.table.schema, p.table.name), pk=ident(p.table.primary_key))

    def _value(self, field: str) -> sql.Composed:
        return sql.SQL("(b.{})::{}").format(ident(field), sql.SQL(self.plan.table.columns[field].type))

    def _update_sql(self) -> sql.Composed:
        p = self.plan
        sets = [sql.SQL("{} = {}").format(ident(f), self._value(f)) for f in p.write_fields]
        sets += [sql.SQL("{} = b.{}").format(ident(r.column), ident(f"_ref{i}"))
                 for i, r in enumerate(p.references) if not r.late]
        sets += [sql.SQL("{} = now()").format(ident(c)) for c in p.touch_columns]
        return sql.SQL("UPDATE {table} AS t SET {sets} FROM b"
                       " WHERE b._action = 'updated' AND t.{pk} = b._tid").format(
            table=ident(p.table.schema, p.table.name), sets=sql.SQL(", ").join(sets), pk=ident(p.table.primary_key))

    def _insert_sql(self) -> sql.Composed:
        p = self.plan
        nk = p.template.natural_key
        columns = [p.table.primary_key, nk.system_column, nk.id_column, *p.write_fields, *(r.column for r in p.references)]
        external = sql.SQL("NULL") if p.mode == "create_new" else sql.SQL("b._sid")
        values = [sql.SQL("b._new_id"), self._lit(p.source_system), external, *(self._value(f) for f in p.write_fields),
                  *(sql.SQL("b.{}").format(ident(f"_ref{i}")) for i in range(len(p.references)))]
        overriding = sql.SQL(" OVERRIDING SYSTEM VALUE") if p.table.columns[p.table.primary_key].identity else sql.SQL("")
        return sql.SQL("INSERT INTO {table} ({columns}){overriding} SELECT {values} FROM b"
                       " WHERE b._action = 'created'").format(
            table=ident(p.table.schema, p.table.name), columns=sql.SQL(", ").join(ident(c) for c in columns),
            overriding=overriding, values=sql.SQL(", ").join(values))

    def _state_sql(self) -> tuple[sql.Composed, sql.Composed]:
        p = self.plan
        names = dict(control=ident(CONTROL), profile=self._lit(p.profile), entity=self._lit(p.entity_name),
                     target_name=self._lit(p.table.qualified))
        select = ("SELECT {profile}, {entity}, b._sid, {target_name}, COALESCE(b._new_id, b._tid)::text, b._hash,"
                  " %(run_id)s FROM b WHERE b._action IN ('created', 'updated') AND b._old_hash IS {state}")
        into = "INSERT INTO {control}.record_state (profile, entity, source_id, target_table, target_id, source_hash, run_id) "
        # new source ids: a plain INSERT. Known ones (changed rows, the few): ON CONFLICT, which
        # probes the primary key per row; an UPDATE ... FROM the CTE is at the planner's mercy
        insert = sql.SQL(into + select).format(state=sql.SQL("NULL"), **names)
        restate = sql.SQL(into + select + " ON CONFLICT (profile, entity, source_id) DO UPDATE SET"
                          " target_id = EXCLUDED.target_id, source_hash = EXCLUDED.source_hash,"
                          " run_id = EXCLUDED.run_id, updated_at = now()").format(state=sql.SQL("NOT NULL"), **names)
        return insert, restate

    # -- execution ----------------------------------------------------------------------------
    def merge(self, conn: psycopg.Connection, lo: int, hi: int, *,
              on_isolated: Callable[[int, str], None] | None = None) -> Counter[str]:
        """Merge staging rows ``lo < _rn <= hi``; isolate rows the database refuses. Returns counts by action."""
        try:
            return self._run(conn, lo, hi)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as error:
            if hi - lo == 1:
                message = _describe(error)
                if on_isolated:
                    on_isolated(hi, message)
                return self._run(conn, lo, hi, forced_error=message)
            middle = (lo + hi) // 2
            counts = self.merge(conn, lo, middle, on_isolated=on_isolated)
            counts.update(self.merge(conn, middle, hi, on_isolated=on_isolated))
            return counts

    def _pending_sql(self) -> sql.Composed:
        p = self.plan
        parts = [sql.SQL("SELECT %(run_id)s, {profile}, {entity}, b._sid, COALESCE(b._new_id, b._tid)::text, {column},"
                         " {ref_entity}, (b.{carrier})::text FROM b WHERE b._action IN ('created', 'updated')"
                         " AND b.{carrier} IS NOT NULL").format(
            profile=self._lit(p.profile), entity=self._lit(p.entity_name), column=self._lit(r.column),
            ref_entity=self._lit(r.entity), carrier=ident(r.field)) for r in p.references if r.late]
        if not parts:
            return sql.SQL("SELECT 1")
        return sql.SQL("INSERT INTO {}.pending_references (run_id, profile, entity, source_id, target_id, column_name,"
                       " ref_entity, ref_key) {}").format(ident(CONTROL), sql.SQL(" UNION ALL ").join(parts))

    def _statement(self, *, locks: bool) -> sql.Composed:
        # one statement: every part reads the same snapshot, so the audit's before-images are the
        # rows as they were before this batch's UPDATE, and the classification is computed once
        insert_state, update_state = self._state
        lock_ctes, lock_rows = self._locks_sql() if locks else (sql.SQL(""), sql.SQL(""))
        return sql.SQL(
            "WITH b AS MATERIALIZED ({classify}),"
            " audit AS ({audit}), upd AS ({update}), ins AS ({insert}),"
            " state_new AS ({insert_state}), state_old AS ({update_state}), pending AS ({pending}){lock_ctes}"
            " SELECT b._action, count(*) FROM b GROUP BY b._action{lock_rows}"
        ).format(classify=self._classify, audit=self._audit, update=self._update, insert=self._insert,
                 insert_state=insert_state, update_state=update_state, pending=self._pending_sql(),
                 lock_ctes=lock_ctes, lock_rows=lock_rows)

    def _locks_sql(self) -> tuple[sql.Composable, sql.Composable]:
        """Per checked reference, the distinct ids written less the rows found and locked FOR KEY SHARE.

        Zero for every reference means each row the batch points at exists and stays until commit.
        A row deleted after the statement's snapshot was taken is not returned by the lock.
        Returns the CTEs of distinct ids (counted and locked from one hash aggregate) and the
        result rows.
        """
        ctes, rows = [], []
        for i, ref in enumerate(self.plan.references):
            if ref.late:
                continue
            ids = ident(f"_ids{i}")
            ctes.append(sql.SQL(", {ids} AS (SELECT DISTINCT b.{ref} AS id FROM b"
                                " WHERE b._action IN ('created', 'updated') AND b.{ref} IS NOT NULL)").format(
                ids=ids, ref=ident(f"_ref{i}")))
            rows.append(sql.SQL(
                " UNION ALL SELECT {key}, (SELECT count(*) FROM {ids}) - (SELECT count(*) FROM"
                " (SELECT 1 FROM {table} AS r WHERE r.{pk} IN (SELECT id FROM {ids}) FOR KEY SHARE OF r) AS l)").format(
                key=sql.Literal(f"{_UNLOCKED}{i}"), ids=ids, table=ident(ref.table.schema, ref.table.name),
                pk=ident(ref.table.primary_key)))
        return sql.SQL("").join(ctes), sql.SQL("").join(rows)

    def _dry_run_statement(self) -> sql.Composed:
        # classify only: the predicted action of every record goes to dry_run_records, the target
        # tables and the audit are not touched
        p = self.plan
        return sql.SQL(
            "WITH b AS MATERIALIZED ({classify}),"
            " predicted AS (INSERT INTO {control}.dry_run_records (run_id, profile, entity, source_id, action,"
            " target_id, duplicate_of, confidence, error, resolves)"
            " SELECT %(run_id)s, {profile}, {entity}, b._sid, b._action, b._tid::text, b._dup_of,"
            " b._confidence, COALESCE(b._err, b._warning), b._action IN ('created', 'updated', 'unchanged') FROM b)"
            " SELECT b._action, count(*) FROM b GROUP BY b._action"
        ).format(classify=self._classify, control=ident(CONTROL), profile=self._lit(p.profile),
                 entity=self._lit(p.entity_name))

    def _run(self, conn: psycopg.Connection, lo: int, hi: int, *, forced_error: str | None = None) -> Counter[str]:
        params = {"lo": lo, "hi": hi, "run_id": self.run_id, "forced": forced_error,
                  "id_prefix": uuid.uuid4().hex[:20]}
        if self.set_based_references:
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL session_replication_role = replica")
                    counts = Counter(dict(conn.execute(self._merge, params).fetchall()))
                    if any(counts.pop(key) for key in [k for k in counts if k.startswith(_UNLOCKED)]):
                        raise _ReferenceGone
                return counts
            except _ReferenceGone:
                pass  # a referenced row was deleted meanwhile: this batch again, checked by the triggers
        with conn.transaction():
            rows = conn.execute(self._merge_under_triggers, params).fetchall()
        return Counter(dict(rows))


def is_first_import(conn: psycopg.Connection, plan: LoadPlan) -> bool:
    """Whether neither the target table nor ``record_state`` holds anything of this entity's source yet.

    Two index probes (the natural key and the state's primary key), taken before the first batch.
    """
    nk = plan.template.natural_key
    return not conn.execute(sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE {nk_sys} = %s AND {nk_id} IS NOT NULL)"
        " OR EXISTS (SELECT 1 FROM {control}.record_state WHERE profile = %s AND entity = %s)").format(
        table=ident(plan.table.schema, plan.table.name), nk_sys=ident(nk.system_column), nk_id=ident(nk.id_column),
        control=ident(CONTROL)), (plan.source_system, plan.profile, plan.entity_name)).fetchone()[0]


def record_duplicate_states(conn: psycopg.Connection, plan: LoadPlan, *, staging: str, run_id: str) -> int:
    """Point each duplicate's source id at the target row its survivor became (for references)."""
    cur = conn.execute(sql.SQL(
        "INSERT INTO {control}.record_state (profile, entity, source_id, target_table, target_id, source_hash, run_id)"
        " SELECT {profile}, {entity}, (s.{sid})::text, {target_name}, COALESCE(sv.target_id, s._match_tid),"
        " 'duplicate', %s FROM {staging} AS s"
        " LEFT JOIN {control}.record_state AS sv ON sv.profile = {profile} AND sv.entity = {entity}"
        " AND sv.source_id = s._dup_of"
        " WHERE s._dup_of IS DISTINCT FROM (s.{sid})::text AND s._error IS NULL"
        " AND COALESCE(sv.target_id, s._match_tid) IS NOT NULL AND (s._dup_of IS NOT NULL)"
        " ON CONFLICT (profile, entity, source_id) DO UPDATE SET target_id = EXCLUDED.target_id,"
        " source_hash = EXCLUDED.source_hash, run_id = EXCLUDED.run_id, updated_at = now()"
        # an unchanged duplicate keeps its state row as it is: a re-run rewrites nothing
        " WHERE (record_state.target_id, record_state.source_hash)"
        " IS DISTINCT FROM (EXCLUDED.target_id, EXCLUDED.source_hash)").format(
        control=ident(CONTROL), profile=sql.Literal(plan.profile), entity=sql.Literal(plan.entity_name),
        sid=ident(plan.entity.source_id), target_name=sql.Literal(plan.table.qualified),
        staging=ident(CONTROL, staging)), (run_id,))
    return cur.rowcount


def _describe(error: psycopg.Error) -> str:
    diag = error.diag
    parts = [diag.message_primary or str(error)]
    if diag.constraint_name:
        parts.append(f"constraint {diag.constraint_name}")
    if diag.column_name:
        parts.append(f"column {diag.column_name}")
    if diag.message_detail:
        parts.append(diag.message_detail)
    return "; ".join(parts)
