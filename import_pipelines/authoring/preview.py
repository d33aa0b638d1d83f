"""Preview a template: its SQL, its first staged rows, its counts and its rejects, writing nothing.

For each entity (in the order the import loads them) the preview does what the import does up
to the load, in *temporary* tables of one target session whose transaction is rolled back at the
end: the compiled SELECT streams from the read-only source into a TEMP staging table
(:func:`~import_pipelines.extract.postgres.stream_to_staging`), the map step's field rules mark
the rows they reject (:func:`~import_pipelines.pipeline.steps.mark_invalid_rows`), repeated source
identifiers and the template's dedupe rule mark duplicates
(:func:`~import_pipelines.pipeline.steps.mark_repeated_source_ids`,
:func:`~import_pipelines.dedupe.staging.apply_rule`). Then every staged row is classified as
the load would classify it: its existing target row by natural key (or by a dedupe match), its
last imported hash (``unchanged``), its references resolved against the target, the import's
state and the rows previewed for the entities it references, and the mode. The counts per
action are therefore the ones a real run reports.

The target's own tables and ``import_control`` are only read: nothing the preview does outlives
its session, and no other session sees any of it. What a preview cannot foresee is a row the
database itself refuses at insert time (a CHECK constraint, a failed cast); a dry run finds those.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import ClientCursor, sql

from import_pipelines.authoring.masking import mask_kind, masked
from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.connect import connect
from import_pipelines.db.sql import ident
from import_pipelines.load.plan import LoadPlan, MappingError, build_plan
from import_pipelines.query.compile import compile_query
from import_pipelines.templates.graph import dependency_order, upstream_entities
from import_pipelines.templates.model import Mode, Template

ACTIONS = ("created", "updated", "unchanged", "skipped", "failed")
TEMP = "pg_temp"


@dataclass(frozen=True)
class Rejected:
    """A row the import would not load, and why (``step`` is ``map`` or ``load``)."""

    source_id: str | None
    step: str
    reason: str


@dataclass(frozen=True)
class EntityPreview:
    """What the import would do with one entity."""

    entity: str
    target: str
    sql: str
    columns: list[str]
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    would: dict[str, int]
    rejected: list[Rejected]
    masked_fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entity's preview as a JSON-serialisable document."""
        return {"entity": self.entity, "target": self.target, "sql": self.sql, "counts": self.counts,
                "would": self.would, "columns": self.columns, "rows": self.rows,
                "masked_fields": self.masked_fields,
                "rejected": [{"source_id": r.source_id, "step": r.step, "reason": r.reason} for r in self.rejected],
                "error": self.error}


@dataclass(frozen=True)
class Preview:
    """A template's preview: one :class:`EntityPreview` per entity shown."""

    template: str
    profile: str
    entities: list[EntityPreview]
    seconds: float

    def entity(self, name: str) -> EntityPreview:
        """The preview of entity ``name``."""
        return next(e for e in self.entities if e.entity == name)

    def to_json(self) -> dict[str, Any]:
        """The preview as one JSON-serialisable document."""
        return {"template": self.template, "profile": self.profile, "seconds": round(self.seconds, 3),
                "entities": [e.to_json() for e in self.entities]}


def preview_template(template: Template, *, source_url: str, target_url: str, entities: list[str] | None = None,
                     profile: str | None = None, source_system: str | None = None, mode: Mode | None = None,
                     rows: int = 5, rejected: int = 10, unmasked: bool = False) -> Preview:
    """Preview ``template`` (or only ``entities``) from ``source_url`` into ``target_url``, writing nothing.

    The entities a shown entity references are previewed too (not shown), so that its
    references resolve as in a real run. ``profile`` names the import whose state tells
    unchanged records from changed ones (default: the template's name).
    """
    started = time.perf_counter()
    profile = profile or template.name
    wanted = set(entities or template.entities)
    unknown = wanted - set(template.entities)
    if unknown:
        raise ValueError(f"unknown entit{'y' if len(unknown) == 1 else 'ies'} {', '.join(sorted(unknown))}"
                         f" (template {template.name!r} has {', '.join(template.entities)})")
    needed = _with_upstream(template, wanted)
    shown: list[EntityPreview] = []
    with connect(source_url, read_only=True) as source, connect(target_url) as target:
        version = source.info.server_version
        state = target.execute("SELECT to_regclass(%s) IS NOT NULL",
                               (f"{CONTROL_SCHEMA}.record_state",)).fetchone()[0]
        previewed: dict[str, sql.Identifier] = {}
        try:
            for number, name in enumerate(n for n in dependency_order(template) if n in needed):
                result = _preview_entity(template, name, number=number, source=source, source_url=source_url,
                                         target=target, version=version, profile=profile,
                                         source_system=source_system, mode=mode, state=state, previewed=previewed,
                                         rows=rows, rejected=rejected, unmasked=unmasked)
                if name in wanted:
                    shown.append(result)
        finally:
            # everything above lives in temporary tables of this transaction: gone, never seen
            target.rollback()
    return Preview(template=template.name, profile=profile, entities=shown, seconds=time.perf_counter() - started)


def _with_upstream(template: Template, names: set[str]) -> set[str]:
    needed, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(upstream_entities(template, name))
    return needed


def _preview_entity(template: Template, name: str, *, number: int, source: psycopg.Connection, source_url: str,
                    target: psycopg.Connection, version: int, profile: str, source_system: str | None,
                    mode: Mode | None, state: bool, previewed: dict[str, sql.Identifier], rows: int, rejected: int,
                    unmasked: bool) -> EntityPreview:
    from import_pipelines.dedupe.staging import apply_rule
    from import_pipelines.extract.postgres import stream_to_staging
    from import_pipelines.pipeline.steps import mark_invalid_rows, mark_repeated_source_ids

    entity = template.entities[name]
    compiled = compile_query(entity.query, entity.fields, server_version=version)
    text = ClientCursor(source).mogrify(compiled.statement, compiled.params)
    source.rollback()
    target_name = f"{template.target_schema}.{entity.target}"
    try:
        with target.transaction():
            plan = build_plan(target, template=template, entity_name=name, profile=profile,
                              source_system=source_system, mode=mode)
    except MappingError as error:
        return EntityPreview(entity=name, target=target_name, sql=text, columns=compiled.columns, rows=[], counts={},
                             would={}, rejected=[], error=str(error))
    staging_name, would_name = f"_preview_staging_{number}", f"_preview_would_{number}"
    staging, would = ident(TEMP, staging_name), ident(TEMP, would_name)
    staged = stream_to_staging(source_url=source_url, target=target, compiled=compiled, schema=TEMP,
                               table=staging_name, chunk_rows=template.batch_rows, temporary=True)
    invalid = mark_invalid_rows(target, plan, staging)
    repeated = mark_repeated_source_ids(target, entity, staging)
    counts = {"source_rows": staged, "rejected_by_map": invalid, "repeated_source_ids": repeated,
              "duplicates_by_rule": 0, "matched_target_rows": 0}
    if entity.dedupe is not None:
        nk = template.natural_key
        outcome = apply_rule(target, staging=staging, target=ident(plan.table.schema, plan.table.name),
                             primary_key=plan.table.primary_key, natural_key=(nk.system_column, nk.id_column),
                             source_system=plan.source_system, source_id=entity.source_id, rule=entity.dedupe,
                             survivor_updated=entity.survivor_updated)
        counts.update(duplicates_by_rule=outcome.within, matched_target_rows=outcome.against_target)
    target.execute(_classify_sql(plan, staging=staging, would=would, state=state, previewed=previewed))
    # a duplicate is found through its survivor, as the import's state records it
    target.execute(sql.SQL("UPDATE {w} AS d SET resolves = true FROM {w} AS sv WHERE d.dup_of = sv.sid"
                           " AND sv.resolves AND NOT d.resolves").format(w=would))
    previewed[name] = would
    outcome_counts = dict(target.execute(sql.SQL("SELECT action, count(*) FROM {} GROUP BY action").format(would)))
    left_empty = target.execute(sql.SQL("SELECT coalesce(sum(left_empty), 0) FROM {}").format(would)).fetchone()[0]
    counts["references_left_empty"] = int(left_empty)
    sample, masks = _staged_rows(target, staging, compiled.columns, limit=rows, unmasked=unmasked)
    refused = [Rejected(sid, "map" if map_error else "load", reason) for sid, map_error, reason in target.execute(
        sql.SQL("SELECT w.sid, s._error IS NOT NULL, w.error FROM {w} AS w JOIN {s} AS s ON s._rn = w._rn"
                " WHERE w.action = 'failed' ORDER BY w._rn LIMIT %s").format(w=would, s=staging), (rejected,))]
    return EntityPreview(entity=name, target=target_name, sql=text, columns=compiled.columns, rows=sample,
                         counts=counts, would={a: int(outcome_counts.get(a, 0)) for a in ACTIONS}, rejected=refused,
                         masked_fields=masks)


def _classify_sql(plan: LoadPlan, *, staging: sql.Identifier, would: sql.Identifier, state: bool,
                  previewed: dict[str, sql.Identifier]) -> sql.Composed:
    """The load's classification of every staged row, into a temporary table ``would``.

    The same decisions, in the same order, as the merge's: a duplicate is skipped, a row with
    an error fails (the map step's, a required reference that is empty or not found), the mode
    decides between created, updated and skipped, and a row whose staged hash equals its last
    imported one is unchanged. A reference resolves to a target row by natural key, through the
    import's state (when the referenced entity dedupes), or to a row the preview of the
    referenced entity predicts will exist.
    """
    p = plan
    nk = p.template.natural_key
    sid = sql.SQL("(s.{})::text").format(ident(p.entity.source_id))
    system = sql.Literal(p.source_system)
    control = ident(CONTROL_SCHEMA)
    pk_type = sql.SQL(p.table.columns[p.table.primary_key].type)
    errors: list[sql.Composable] = [sql.SQL("s._error")]
    left_empty: list[sql.Composable] = []
    joins: list[sql.Composable] = []
    for i, ref in enumerate(p.references):
        if ref.late:
            continue  # resolved by late_seed once everything is loaded
        alias = ident(f"r{i}")
        carrier = sql.SQL("(s.{})::text").format(ident(ref.field))
        joins.append(sql.SQL(" LEFT JOIN {table} AS {a} ON {a}.{sys} = {system} AND {a}.{ext} = {carrier}").format(
            table=ident(ref.table.schema, ref.table.name), a=alias, sys=ident(nk.system_column), system=system,
            ext=ident(nk.id_column), carrier=carrier))
        found = [sql.SQL("{}.{} IS NOT NULL").format(alias, ident(ref.table.primary_key))]
        if ref.via_state and state:
            found.append(sql.SQL("EXISTS (SELECT 1 FROM {}.record_state AS rs WHERE rs.profile = {} AND rs.entity = {}"
                                 " AND rs.source_id = {} AND rs.target_id IS NOT NULL)").format(
                control, sql.Literal(p.profile), sql.Literal(ref.entity), carrier))
        if ref.entity in previewed:
            found.append(sql.SQL("EXISTS (SELECT 1 FROM {} AS u WHERE u.sid = {} AND u.resolves)").format(
                previewed[ref.entity], carrier))
        missing = sql.SQL("{} IS NOT NULL AND NOT ({})").format(carrier, sql.SQL(" OR ").join(found))
        if ref.required:
            errors.append(sql.SQL("CASE WHEN {} IS NULL THEN {} END").format(
                carrier, sql.Literal(f"{ref.column}: required reference ({ref.field}) is empty")))
        if ref.required or ref.on_missing == "fail":
            errors.append(sql.SQL("CASE WHEN {} THEN {} || {} END").format(
                missing, sql.Literal(f"{ref.column}: no {ref.entity} with {nk.id_column} "), carrier))
        else:
            left_empty.append(sql.SQL("CASE WHEN {} THEN 1 ELSE 0 END").format(missing))
    state_join = sql.SQL(
        " LEFT JOIN {control}.record_state AS st ON st.profile = {profile} AND st.entity = {entity}"
        " AND st.source_id = {sid}").format(control=control, profile=sql.Literal(p.profile),
                                            entity=sql.Literal(p.entity_name), sid=sid) if state else sql.SQL("")
    old_hash, old_tid = ((sql.SQL("st.source_hash"), sql.SQL("st.target_id")) if state
                         else (sql.SQL("NULL::text"), sql.SQL("NULL::text")))
    mode = sql.Literal(p.mode)
    action = sql.SQL(
        "CASE WHEN y._dup_of IS NOT NULL THEN 'skipped'"
        " WHEN y._err IS NOT NULL THEN 'failed'"
        " WHEN {mode} = 'create_new' THEN 'created'"
        " WHEN y._tid IS NULL THEN CASE WHEN {mode} = 'update_only' THEN 'skipped' ELSE 'created' END"
        " WHEN y._old_hash = y._hash AND y._old_tid = y._tid::text THEN 'unchanged'"
        " WHEN {mode} = 'create_only' THEN 'skipped'"
        " ELSE 'updated' END").format(mode=mode)
    return sql.SQL(
        "CREATE TEMP TABLE {would} AS SELECT z.*, z.action IN ('created', 'updated', 'unchanged') AS resolves FROM ("
        " SELECT y._rn, y._sid AS sid, y._dup_of AS dup_of, y._err AS error, y._left_empty AS left_empty,"
        " {action} AS action FROM ("
        "  SELECT s._rn, s._dup_of, s._hash, {sid} AS _sid, COALESCE(t.{pk}, (s._match_tid)::{pk_type}) AS _tid,"
        "  {old_hash} AS _old_hash, {old_tid} AS _old_tid, NULLIF(concat_ws('; ', {errors}), '') AS _err,"
        "  {left_empty} AS _left_empty"
        "  FROM {staging} AS s"
        "  LEFT JOIN {table} AS t ON t.{sys} = {system} AND t.{ext} = {sid}{state_join}{joins}) AS y) AS z"
    ).format(would=would, action=action, sid=sid, pk=ident(p.table.primary_key), pk_type=pk_type, old_hash=old_hash,
             old_tid=old_tid, errors=sql.SQL(", ").join(errors),
             left_empty=sql.SQL(" + ").join(left_empty) if left_empty else sql.SQL("0"),
             staging=staging, table=ident(p.table.schema, p.table.name), sys=ident(nk.system_column),
             system=system, ext=ident(nk.id_column), state_join=state_join, joins=sql.SQL("").join(joins))


def _staged_rows(conn: psycopg.Connection, staging: sql.Identifier, columns: list[str], *, limit: int,
                 unmasked: bool) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The first staged rows as text, fields that look like secrets or personal data masked."""
    cells = sql.SQL(", ").join(sql.SQL("({})::text").format(ident(c)) for c in columns)
    found = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY _rn LIMIT %s").format(cells, staging), (limit,)).fetchall()
    rows = [dict(zip(columns, row)) for row in found]
    masks: dict[str, str] = {}
    if not unmasked:
        for column in columns:
            kind = mask_kind(column, [r[column] for r in rows if r[column] is not None])
            if kind is not None:
                masks[column] = kind
                for row in rows:
                    if row[column] is not None:
                        row[column] = masked(kind)
    return rows, masks


def render_text(preview: Preview, *, width: int = 40) -> str:
    """The preview as a person reads it in a terminal."""
    lines = [f"preview of template {preview.template} (profile {preview.profile}): nothing was written"]
    for e in preview.entities:
        lines += ["", f"entity {e.entity} -> {e.target}", "  compiled SQL:", f"    {e.sql}"]
        if e.error:
            lines.append(f"  cannot be previewed: {e.error}")
            continue
        c = e.counts
        lines.append(f"  staged {c['source_rows']:,} rows; map rejects {c['rejected_by_map']:,};"
                     f" repeated source ids {c['repeated_source_ids']:,}; duplicates by the dedupe rule"
                     f" {c['duplicates_by_rule']:,} (matching target rows {c['matched_target_rows']:,})")
        lines.append("  would: " + ", ".join(f"{action} {e.would[action]:,}" for action in ACTIONS)
                     + f"; references left empty {c['references_left_empty']:,}")
        if e.rows:
            lines.append("  first rows as staged" + (f" (masked: {', '.join(e.masked_fields)})" if e.masked_fields
                                                     else "") + ":")
            lines.append("    " + " | ".join(e.columns))
            for row in e.rows:
                lines.append("    " + " | ".join(_cell(row[c], width) for c in e.columns))
        if e.rejected:
            failed = e.would["failed"]
            lines.append(f"  rejected ({len(e.rejected)} of {failed:,} shown):")
            lines += [f"    {r.source_id}: [{r.step}] {r.reason}" for r in e.rejected]
    return "\n".join(lines)


def _cell(value: object, width: int) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= width else text[:width - 3] + "..."
