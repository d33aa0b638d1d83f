"""Preview a template: its SQL, its first staged rows, its counts and its rejects, writing nothing.

For each entity (in the order the import loads them) the preview does what the import does up
to the load, in *temporary* tables of one target session whose transaction is rolled back at the
end: the compiled SELECT streams from the read-only source into a TEMP staging table
(:func:`~import_pipelines.extract.postgres.stream_to_staging`), the map step's field rules mark
the rows they reject (:func:`~import_pipelines.pipeline.steps.mark_invalid_rows`, then the entity's
``validate`` rules), repeated source
identifiers and the template's dedupe rule mark duplicates
(:func:`~import_pipelines.pipeline.steps.mark_repeated_source_ids`,
:func:`~import_pipelines.dedupe.staging.apply_rule`). Then the load engine classifies every
staged row exactly as a dry run does (:class:`~import_pipelines.engine.merge.Merger`), into a
temporary predictions table: its existing target row by natural key (or by a dedupe match), its
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
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from import_pipelines.authoring.masking import mask_kind, masked
from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.connect import connect
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import RunRef, stream_ids
from import_pipelines.engine.load import is_first_import
from import_pipelines.engine.merge import Merger
from import_pipelines.engine.plan import MergePlan
from import_pipelines.pipeline.plan import MappingError, build_plan
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
        try:
            for number, name in enumerate(n for n in dependency_order(template) if n in needed):
                result = _preview_entity(template, name, number=number, source=source, source_url=source_url,
                                         target=target, version=version, profile=profile,
                                         source_system=source_system, mode=mode, state=state,
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
                    mode: Mode | None, state: bool, rows: int, rejected: int,
                    unmasked: bool) -> EntityPreview:
    from import_pipelines.dedupe.review import hold_for_review, hold_undecided, load_decisions
    from import_pipelines.dedupe.staging import apply_rule
    from import_pipelines.extract.postgres import stream_to_staging
    from import_pipelines.pipeline.steps import mark_invalid_rows, mark_repeated_source_ids

    entity = template.entities[name]
    # staged as the extract stages it: the match fields (every email of a customer) too
    compiled = compile_query(entity.query, entity.staged_fields, server_version=version)
    text = compiled.statement.as_string(source)
    source.rollback()
    target_name = f"{template.target_schema}.{entity.target}"
    try:
        with target.transaction():
            plan = build_plan(target, template=template, entity_name=name, profile=profile,
                              source_system=source_system, mode=mode)
    except MappingError as error:
        return EntityPreview(entity=name, target=target_name, sql=text, columns=compiled.columns, rows=[], counts={},
                             would={}, rejected=[], error=str(error))
    staging_name = f"_preview_staging_{number}"
    staging = ident(TEMP, staging_name)
    staged = stream_to_staging(source_url=source_url, target=target, compiled=compiled, table=staging_name,
                               run_id=RUN, chunk_rows=template.batch_rows, temporary=True)
    invalid = mark_invalid_rows(target, plan, staging)
    if entity.validate_:  # the entity's validate rules, as the map step runs them
        from import_pipelines.pipeline.steps import staging_types
        from import_pipelines.validation import validate_staged

        invalid += validate_staged(target, expectations=list(entity.validate_), staging=staging, rows=staged,
                                   types=staging_types(target, staging), where=f"entities.{name}.validate",
                                   log=lambda message: None).newly_failed
    repeated = mark_repeated_source_ids(target, entity, staging)
    counts = {"source_rows": staged, "rejected_by_map": invalid, "repeated_source_ids": repeated,
              "duplicates_by_rule": 0, "matched_target_rows": 0}
    if entity.dedupe is not None:
        nk = template.natural_key
        reviews = target.execute("SELECT to_regclass('import_control.review_pairs') IS NOT NULL").fetchone()[0]
        decisions = load_decisions(target, profile=profile, entity=name) if reviews else None
        outcome = apply_rule(target, staging=staging, target=ident(plan.table.schema, plan.table.name),
                             primary_key=plan.table.primary_key, natural_key=(nk.system_column, nk.id_column),
                             source_system=plan.source_system, source_id=entity.source_id, rule=entity.dedupe,
                             survivor_updated=entity.survivor_updated, decisions=decisions)
        # possible duplicates wait, as in a real run (the preview stores no pair)
        hold_for_review(target, staging=staging, source_id=entity.source_id, pairs=outcome.review)
        if reviews:
            hold_undecided(target, staging=staging, source_id=entity.source_id, profile=profile, entity=name)
        counts.update(duplicates_by_rule=outcome.within + outcome.of_loaded, matched_target_rows=outcome.against_target)
    outcome_counts = _classify(target, plan.merge, staging=staging, state=state, profile=profile)
    left_empty = target.execute(sql.SQL(
        "SELECT count(*) FROM {} WHERE entity = %s AND resolves AND error LIKE '%%; left empty'").format(PREDICTIONS),
        (name,)).fetchone()[0]
    counts["references_left_empty"] = int(left_empty)
    shown = list(entity.fields)  # the written fields; match fields are staged for the dedupe rule only
    sample, masks = _staged_rows(target, staging, shown, limit=rows, unmasked=unmasked)
    refused = [Rejected(sid, "map" if map_error else "load", reason) for sid, map_error, reason in target.execute(
        sql.SQL("SELECT w.source_id, bool_or(s._error IS NOT NULL), min(w.error) FROM {w} AS w JOIN {s} AS s"
                " ON {sid} = w.source_id WHERE w.entity = %s AND w.action = 'failed' GROUP BY w.source_id"
                " ORDER BY min(s._rn) LIMIT %s").format(w=PREDICTIONS, s=staging, sid=plan.merge.source_id),
        (name, rejected))]
    return EntityPreview(entity=name, target=target_name, sql=text, columns=shown, rows=sample,
                         counts=counts, would={a: int(outcome_counts.get(a, 0)) for a in ACTIONS}, rejected=refused,
                         masked_fields=masks)


PREDICTIONS = ident(TEMP, "_preview_predictions")
RUN = "preview"


def _classify(conn: psycopg.Connection, plan: MergePlan, *, staging: sql.Identifier, state: bool,
              profile: str) -> dict[str, int]:
    """The load engine's dry-run classification of every staged row, into the temporary predictions.

    The same statement a dry run runs (the engine's own, not a copy of its rules), aimed at
    temporary tables: what it predicts for an entity resolves the references of the entities
    previewed after it, as a real run's rows would.
    """
    conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (run_id text, profile text, entity text, source_id text,"
                         " action text, target_id text, duplicate_of text, confidence real, error text,"
                         " resolves boolean)").format(PREDICTIONS))
    streams = stream_ids(conn, profile) if state else {}
    stream_id = streams.get(plan.entity)
    run = RunRef(run_id=RUN, run_seq=0, run_day=date.today(), run_group=RUN)
    first = stream_id is None and is_first_import(conn, plan, stream_id=None)
    merger = Merger(plan, staging=staging, run=run, stream_id=stream_id, streams=streams, dry_run=True,
                    first_import=first, predictions=PREDICTIONS)
    last = conn.execute(sql.SQL("SELECT coalesce(max(_rn), 0) FROM {}").format(staging)).fetchone()[0]
    counts = merger.merge(conn, 0, last) if last else {}
    # a duplicate is found through its survivor, as the import's state records it
    merger.predict_duplicates(conn)
    return dict(counts)


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
