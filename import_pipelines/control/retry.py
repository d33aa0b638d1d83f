"""Retry of a run's failed records: import again only the records that failed, once the template or
the data is fixed.

The run's ``failed`` audit rows name, per entity, the source ids that failed. The retry is a new
run of the same profile through the one import path (extract, map, dedupe, load, then the late
seed), each entity's source query narrowed to those ids, so no other record is read or written;
its audit rows are its own. Entities go in the template's dependency order: a record that failed
because the record it references failed is retried after that one.

What can be narrowed:

- an entity with a PostgreSQL ``query`` whose ``source_id`` field is a column (``c.id``): a filter
  ``column = ANY(ids)`` (an index on the column serves it), or a raw SQL ``expression``: a
  ``where`` predicate ``(expression)::text IN (ids)``;
- an entity reading records (files, sheets, pushes, Airtable, HTTP APIs) cannot be asked for
  some records only, and a source id built by ``concat``, ``case``, ``json`` or ``coalesce`` cannot be
  matched back to its source rows (nor one with a transform): these are refused, naming the entity. Their failed records
  have no state, so the profile's next ordinary run (a sync) reads them again as new records;
- a record that failed before it had a source id (a line a file reader could not parse) has
  nothing to be found by; it is counted, not retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg

from import_pipelines.control import ensure_control_schema
from import_pipelines.db.connect import connection
from import_pipelines.templates.graph import dependency_order
from import_pipelines.templates.model import Filter, Template

Log = Callable[[str], None]


class RetryError(RuntimeError):
    """A retry that cannot be done; the message names the run or entity and why (nothing was imported)."""


@dataclass
class RetryOutcome:
    """The retry of ``run_id``'s failed records as run ``retry_run_id``: per entity the ids and the counts."""

    run_id: str
    retry_run_id: str
    profile: str
    failed: dict[str, int] = field(default_factory=dict)        # entity -> failed records with a source id
    without_id: dict[str, int] = field(default_factory=dict)    # entity -> failed records without one
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> the retry's counts by action

    def render_text(self) -> str:
        """Lines for a person."""
        lines = [f"retry of the failed records of run {self.run_id} (profile {self.profile}) as run {self.retry_run_id}"]
        for entity, failed in self.failed.items():
            counts = self.counts.get(entity, {})
            lines.append(f"  {entity}: {failed:,} failed records read again: "
                         + (", ".join(f"{action} {n:,}" for action, n in counts.items() if n) or "nothing"))
        for entity, count in self.without_id.items():
            lines.append(f"  {entity}: {count:,} failed records have no source id and cannot be retried")
        return "\n".join(lines)


def failed_records(conn: psycopg.Connection, run_id: str) -> tuple[str, dict[str, list[str]], dict[str, int]]:
    """The profile of ``run_id``, its failed source ids per entity, and per entity its failures without an id."""
    row = conn.execute("SELECT run_seq, run_day, profile FROM import_control.runs WHERE run_id = %s",
                       (run_id,)).fetchone()
    if row is None:
        raise RetryError(f"no import run {run_id!r} is recorded in import_control.runs")
    run_seq, run_day, profile = row
    ids: dict[str, list[str]] = {}
    without: dict[str, int] = {}
    for entity, source_id in conn.execute(
            "SELECT DISTINCT s.entity, a.source_id FROM import_control.audit_records AS a JOIN import_control.streams"
            " AS s ON s.stream_id = a.stream_id WHERE a.run_day = %s AND a.run_seq = %s AND a.action = 'failed'"
            " ORDER BY 1, 2", (run_day, run_seq)):
        if source_id is None:
            without[entity] = without.get(entity, 0) + 1
        else:
            ids.setdefault(entity, []).append(source_id)
    return profile, ids, without


def narrowed(template: Template, ids: dict[str, list[str]]) -> Template:
    """A copy of ``template`` whose entities in ``ids`` read only those source ids; the others untouched.

    Raises :class:`RetryError` naming every entity whose source cannot be narrowed (module docstring).
    """
    narrowed_template = template.model_copy(deep=True)
    refused = []
    for name, source_ids in ids.items():
        entity = narrowed_template.entities.get(name)
        if entity is None:
            refused.append(f"{name}: not an entity of template {template.name!r}")
            continue
        spec = entity.fields[entity.source_id]
        if entity.query is None:
            refused.append(f"{name}: reads records (files, sheets, pushes, APIs), which cannot be asked for some"
                           " records only; its failed records have no state, so the profile's next run reads them"
                           " again")
        elif spec.column is not None and not spec.transform:
            entity.query.filters.append(Filter(column=spec.column, op="in", value=source_ids))
        elif spec.expression is not None and not spec.transform:
            listed = ", ".join("'" + value.replace("'", "''") + "'" for value in source_ids)
            entity.query.where.append(f"({spec.expression})::text IN ({listed})")
        else:
            refused.append(f"{name}: its source_id field {entity.source_id!r} is computed (concat, case, json,"
                           " coalesce or a transform), so its values cannot be matched back to source rows")
    if refused:
        raise RetryError("the failed records cannot be retried by source id: " + "; ".join(refused))
    return narrowed_template


def retry_failed(run_id: str, *, template: Template, source_url: str, target_url: str,
                 source_system: str | None = None, entities: Sequence[str] | None = None,
                 retry_run_id: str | None = None, batch_rows: int | None = None,
                 log: Log = lambda message: None) -> RetryOutcome:
    """Import again the records that failed in ``run_id`` (of ``entities``, default all) as a new run.

    ``template`` is the profile's template as it is now (fixed); ``source_system`` overrides its
    own as the profile does. Raises :class:`RetryError` before anything is imported when the run
    is unknown, nothing failed, or an entity's source cannot be narrowed to its failed ids.
    """
    from import_pipelines.pipeline import EntityRun, dedupe, extract, load, map_and_validate
    from import_pipelines.pipeline.late_seed import resolve_pending

    with connection(target_url, autocommit=True, purpose="target") as conn:
        ensure_control_schema(conn)
        profile, ids, without = failed_records(conn, run_id)
    if entities is not None:
        unknown = sorted(set(entities) - set(template.entities))
        if unknown:
            raise RetryError(f"template {template.name!r} has no entity {', '.join(map(repr, unknown))}")
        ids = {name: values for name, values in ids.items() if name in entities}
        without = {name: n for name, n in without.items() if name in entities}
    if not ids:
        raise RetryError(f"run {run_id} has no failed records with a source id to retry"
                         + (f" ({sum(without.values()):,} failed before they had one)" if without else ""))
    plan = narrowed(template, ids)
    outcome = RetryOutcome(run_id=run_id, retry_run_id=retry_run_id or f"retry-{uuid.uuid4()}", profile=profile,
                           failed={name: len(ids[name]) for name in dependency_order(template) if name in ids},
                           without_id=without)
    for name in outcome.failed:
        run = EntityRun(profile=profile, template=plan, entity_name=name, run_id=outcome.retry_run_id,
                        source_url=source_url, target_url=target_url, source_system=source_system,
                        batch_rows=batch_rows)
        result = load(run, dedupe(run, map_and_validate(run, extract(run, log=log), log=log), log=log), log=log)
        outcome.counts[name] = {action: n for action, n in result.counts.items() if n}
        log(f"{name}: {len(ids[name]):,} failed records retried: {outcome.counts[name]}")
    resolve_pending(target_url, template=plan, profile=profile, run_id=outcome.retry_run_id,
                    source_system=source_system or template.source_system)
    return outcome
