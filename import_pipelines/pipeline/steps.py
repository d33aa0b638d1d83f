"""The four steps of one entity's import. Dagster ops call these; so do the benchmarks.

Data never travels between steps through Python: extract streams source rows into a staging
table in the target database, and every later step is set-based SQL over that table. What
passes from step to step is a small :class:`Staged` descriptor.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import psycopg
from psycopg import sql

from import_pipelines.control import ACTIONS, CONTROL_SCHEMA, ensure_control_schema
from import_pipelines.db.connect import configure_bulk_session, connect
from import_pipelines.db.sql import ident, shown_value
from import_pipelines.dedupe.confidences import Confidences
from import_pipelines.engine.audit import RunRef, record_summary, register_run, register_stream
from import_pipelines.engine.budget import ErrorBudget
from import_pipelines.engine.dry_run import dry_run_preview, write_dry_run_report
from import_pipelines.engine.late_seed import create_placeholders
from import_pipelines.engine.load import (
    is_small_change,
    load_staged,
    percent,
    record_duplicate_states,
    set_aside_merged,
)
from import_pipelines.engine.staging import drop_staging, index_staging, staging_name
from import_pipelines.extract.postgres import changed_source_ids, stream_to_staging
from import_pipelines.pipeline.checks import record_source_count
from import_pipelines.pipeline.plan import EntityPlan, build_plan
from import_pipelines.query.compile import compile_query
from import_pipelines.templates.model import Entity, Mode, SourceDeleteAction, Template

CONTROL = ident(CONTROL_SCHEMA)

Log = Callable[[str], None]


@dataclass(frozen=True)
class EntityRun:
    """One entity of one profile in one run: what to read, where to write, how."""

    profile: str
    template: Template
    entity_name: str
    run_id: str
    source_url: str
    target_url: str
    source_system: str | None = None
    mode: Mode | None = None
    batch_rows: int | None = None
    workers: int = 2
    dry_run: bool = False
    run_group: str | None = None  # the run a re-execution continues (Dagster's root run id)
    # "keys": once a stream has state, read the source ids and hashes first and only the changed
    # records in full; "full": read every record (a full refresh)
    change_detection: Literal["keys", "full"] = "keys"
    retention_days: int = 90  # how long the profile keeps its per-record audit
    # a records entity's source ({kind: file|sheet|push|airtable|http, ...}, see pipeline/records.py)
    record_source: Mapping[str, Any] | None = None
    mapper: Any = None  # a FieldMapper resource: how a records entity's columns are mapped
    # the profile's rule for records deleted at the source, overriding the template's (pipeline/source_deletes.py)
    on_source_delete: SourceDeleteAction | None = None

    @property
    def rows_per_batch(self) -> int:
        """Rows per extract chunk and per merge transaction."""
        return self.batch_rows or self.template.batch_rows

    def purpose(self, side: str) -> str:
        """``source of profile x, entity y``: which connection an error is about."""
        return f"{side} of profile {self.profile}, entity {self.entity_name}"

    def plan(self, conn) -> EntityPlan:
        """The entity's plan, checked against the target schema."""
        return build_plan(conn, template=self.template, entity_name=self.entity_name, profile=self.profile,
                          source_system=self.source_system, mode=self.mode)


@dataclass(frozen=True)
class Staged:
    """What one step hands to the next: the staging table and what has been learned so far."""

    staging: str
    rows: int
    started: float
    invalid: int = 0
    duplicates: int = 0
    extract_seconds: float = 0.0
    matched_target: int = 0
    confidences: Confidences = field(default_factory=Confidences)
    # the first pairs held for review (at most dedupe.review.SHOWN_PAIRS): review_id, source_id, candidate,
    # confidence, fields
    review: tuple[dict, ...] = ()
    review_count: int = 0  # every pair held for review (the CSV of review_report lists them)
    review_report: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # a records entity: input -> the column it was read from
    mapping_method: str | None = None  # template, preset, ai or heuristic
    mapping_table: str | None = None  # the suggestion and the mapping used, as markdown (mapping/report.py)
    mapping_confidence: float | None = None  # the suggestion's overall confidence
    # records a sync's key pass decided without reading them in full, by action (unchanged)
    unread: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadResult:
    """The outcome of loading one entity."""

    counts: dict[str, int]
    rows: int
    seconds: float
    duplicates: int
    preview: list[dict] = field(default_factory=list)
    preview_columns: list[str] = field(default_factory=list)
    matched_target: int = 0
    confidences: Confidences = field(default_factory=Confidences)
    dry_run: bool = False
    report: str | None = None
    error_report: str | None = None  # the rejected rows' CSV (pipeline/row_errors.py)

    @property
    def rows_per_s(self) -> float:
        """Source rows per second, extract to load."""
        return self.rows / self.seconds if self.seconds else 0.0


def register(conn: psycopg.Connection, run: EntityRun) -> tuple[RunRef, dict[str, int]]:
    """The run's row and the stream id of every entity of the template (created on first use)."""
    ref = register_run(conn, run_id=run.run_id, profile=run.profile, run_group=run.run_group,
                       retention_days=run.retention_days)
    streams = {name: register_stream(conn, profile=run.profile, entity=name,
                                     target_table=f"{run.template.target_schema}.{entity.target}",
                                     source=entity.source_label)
               for name, entity in run.template.entities.items()}
    return ref, streams


# a sync whose key pass finds more than this share of the records changed reads them all in one pass
FULL_READ_SHARE = 0.5


def extract(run: EntityRun, *, log: Log = print) -> Staged:
    """Stream the entity's records into a fresh staging table in the target.

    The first import reads every record. Later ones (``change_detection="keys"``) read each
    record's source id and hash first, compare them with what the last import left in
    ``record_state``, and read only the new and changed records in full; the unchanged ones are
    counted, never moved. An entity with a duplicate rule is always read whole.
    """
    started = time.perf_counter()
    entity = run.template.entities[run.entity_name]
    with connect(run.target_url, autocommit=True, purpose=run.purpose("target")) as target:
        ensure_control_schema(target)
        plan = run.plan(target)  # fail on a mapping that does not fit before reading anything
        ref, streams = register(target, run)
        stream_id = streams[run.entity_name]
        staging = staging_name(run.profile, run.entity_name, run.run_id)
        if entity.records is not None:
            staged = _extract_records(run, entity, target=target, staging=staging, started=started, log=log)
            record_source_count(target, run_seq=ref.run_seq, stream_id=stream_id,
                                rows=staged.rows + sum(staged.unread.values()), how="read")
            return staged
        counted: dict[str, int] = {}  # the source's own count of the query's rows, in the snapshot read
        with connect(run.source_url, read_only=True, purpose=run.purpose("source")) as probe:
            version = probe.info.server_version
        # match fields (every email of a customer) are staged beside the written fields, never written
        compiled = compile_query(entity.query, entity.staged_fields, server_version=version)
        only, read = None, 0
        # an entity with a duplicate rule is read whole: a record's duplicates, wherever they are in
        # the source, decide which of them survives and with which values, as an uninterrupted
        # first import would have decided (a re-run after a crash must converge to the same rows)
        if run.change_detection == "keys" and entity.dedupe is None and not run.dry_run and target.execute(
                "SELECT EXISTS (SELECT 1 FROM import_control.record_state WHERE stream_id = %s)",
                (stream_id,)).fetchone()[0]:
            keys = staging_name(run.profile, f"{run.entity_name}_keys", run.run_id)
            target.autocommit = False
            configure_bulk_session(target)
            read, changed = changed_source_ids(
                source_url=run.source_url, target=target, compiled=compiled, source_id=entity.source_id,
                stream_id=stream_id, table=keys, target_table=ident(plan.table.schema, plan.table.name),
                target_key=plan.table.primary_key, key_type=plan.table.key_type(), run_id=run.run_id,
                purpose=run.purpose("source"), source_rows=lambda n: counted.update(rows=n))
            drop_staging(target, keys)
            target.commit()
            log(f"{run.entity_name} extract: {read:,} records read as keys, {len(changed):,} new or changed")
            if len(changed) <= FULL_READ_SHARE * read:
                only = (entity.source_id, changed)
        target.autocommit = False
        invalid: list[int] = []

        def invalid_text(row: int, message: str) -> None:
            invalid.append(row)
            if len(invalid) <= _LOGGED_INVALID_ROWS:
                log(f"{run.entity_name} extract: source row {row:,}: {message}")

        rows = stream_to_staging(
            source_url=run.source_url, target=target, compiled=compiled, table=staging,
            run_id=run.run_id, chunk_rows=run.rows_per_batch, only=only, purpose=run.purpose("source"),
            on_invalid_text=entity.on_invalid_text or run.template.on_invalid_text, invalid_text=invalid_text,
            progress=lambda done, total: log(f"{run.entity_name} extract: {percent(done, total)}"),
            # a sync's read of its changed records counts only them: the keys pass counted the query
            source_rows=(lambda n: counted.update(rows=n)) if only is None else None)
        if len(invalid) > _LOGGED_INVALID_ROWS:
            log(f"{run.entity_name} extract: {len(invalid):,} rows held text that is not valid UTF-8")
        # the load reads the staging table by row-number ranges: indexed and analysed here, while
        # the entities this one references may still be loading, not when its own load begins
        index_staging(target, staging)
        target.commit()
        record_source_count(target, run_seq=ref.run_seq, stream_id=stream_id, rows=counted["rows"], how="snapshot")
    seconds = time.perf_counter() - started
    unread = {"unchanged": read - rows} if only is not None else {}
    log(f"{run.entity_name} extract: {rows:,} rows staged in {seconds:.2f} s"
        + (f" ({read - rows:,} unchanged records not read)" if unread else ""))
    failed_text = 0 if (entity.on_invalid_text or run.template.on_invalid_text) == "replace" else len(invalid)
    return Staged(staging=staging, rows=rows, started=started, extract_seconds=seconds, unread=unread,
                  invalid=failed_text)


_LOGGED_INVALID_ROWS = 20  # rows named one by one in the step log; the rest are counted


def _extract_records(run: EntityRun, entity: Entity, *, target: psycopg.Connection, staging: str, started: float,
                     log: Log) -> Staged:
    """A records entity: open its source, map its columns onto the inputs, stage the records."""
    from import_pipelines.extract.records import stage_records
    from import_pipelines.mapping.report import mapping_markdown
    from import_pipelines.pipeline.record_reads import extract_from_read, reads_shared
    from import_pipelines.pipeline.records import map_columns, open_source

    if reads_shared(run.template, run.entity_name, record_source=run.record_source,
                    on_source_delete=run.on_source_delete):
        # an API, a cursor, entities derived from one read, deleted records: one registered read per run
        return extract_from_read(run, entity, target=target, staging=staging, started=started, log=log)

    if run.record_source is None:
        raise ValueError(f"entity {run.entity_name!r} reads records, but profile {run.profile!r} names no record"
                         " source (source: {kind: file|sheet|push|airtable|http, ...})")
    source = open_source(run.record_source, name=run.entity_name)
    mapping = map_columns(source, entity, template=run.template, conn=target, mapper=run.mapper,
                          spec=run.record_source, resource_key=f"{run.profile}_field_mapper")
    method = mapping.suggestion.method if mapping.suggestion else "template"
    log(f"{run.entity_name} extract: {source.name}: inputs read from "
        + ", ".join(f"{name} <- {where!r}" for name, where in mapping.columns.items())
        + (f"; custom fields {', '.join(map(repr, mapping.custom))}" if mapping.custom else "") + f" ({method})")
    target.autocommit = False
    rows = stage_records(source=source, entity=entity, columns=mapping.columns, custom=mapping.custom, target=target,
                         table=staging, run_id=run.run_id,
                         progress=lambda done, total: log(f"{run.entity_name} extract: {percent(done, total)}"))
    index_staging(target, staging)
    target.commit()
    failed = target.execute(sql.SQL("SELECT count(*) FROM {} WHERE _error IS NOT NULL").format(
        ident(CONTROL_SCHEMA, staging))).fetchone()[0]
    seconds = time.perf_counter() - started
    log(f"{run.entity_name} extract: {rows:,} records staged in {seconds:.2f} s"
        + (f", {failed:,} of them could not be read" if failed else ""))
    suggestion = mapping.suggestion
    return Staged(staging=staging, rows=rows, started=started, extract_seconds=seconds, invalid=failed,
                  mapping={name: str(where) for name, where in mapping.columns.items()},
                  mapping_method=method, mapping_table=mapping_markdown(suggestion) if suggestion else None,
                  mapping_confidence=suggestion.overall_confidence if suggestion else None)


def map_and_validate(run: EntityRun, staged: Staged, *, log: Log = print) -> Staged:
    """Check every staged row against the target columns, set-based: required values, lengths, types.

    Rows that break a rule get an error naming the field and the rule; they are recorded as
    ``failed`` by the load step and never reach the target table. The field rules and the
    validation are one transaction: a step that fails half-way and is retried starts again from
    the extract's rows, rather than appending its messages to rows it had already marked.
    """
    with connect(run.target_url, purpose=run.purpose("target")) as conn:
        invalid = mark_invalid_rows(conn, run.plan(conn), ident(CONTROL_SCHEMA, staged.staging))
        invalid += staged.invalid
        log(f"{run.entity_name} map: {staged.rows - invalid:,} rows valid, {invalid:,} rejected by field rules")
        if run.template.entities[run.entity_name].validate_:
            from import_pipelines.pipeline.validate import validate_entity

            invalid += validate_entity(conn, run, staged, log=log)
    return replace(staged, invalid=invalid)


_TEXTUAL = ("text", "character varying", "character", "unknown", "name", "citext")
# ISO dates (years 1000-9999, days up to the 28th) and times of day, valid in every month, time
# zone and DateStyle
_ISO_DAY = "[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_ISO_TIME = "([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?"
_CERTAINLY_VALID = {"date": f"^{_ISO_DAY}$",
                    "timestamp with time zone": f"^{_ISO_DAY}([ T]{_ISO_TIME})?$",
                    "timestamp without time zone": f"^{_ISO_DAY}([ T]{_ISO_TIME})?$"}


def mark_invalid_rows(conn: psycopg.Connection, plan: EntityPlan, staging: sql.Identifier) -> int:
    """Set ``_error`` on every row of ``staging`` that breaks a field rule (:func:`field_checks`); return how many.

    The map step's rules, set-based in one UPDATE; the preview runs them on its temporary staging.
    """
    checks = field_checks(plan, staging_types=staging_types(conn, staging), server_version=conn.info.server_version)
    if not checks:
        return 0
    errors = sql.SQL("NULLIF(concat_ws('; ', {}), '')").format(sql.SQL(", ").join(checks))
    cur = conn.execute(sql.SQL("UPDATE {t} AS s SET _error = concat_ws('; ', s._error, e.msg) FROM"
                               " (SELECT _rn, {errors} AS msg FROM {t} AS s) AS e"
                               " WHERE e.msg IS NOT NULL AND s._rn = e._rn").format(t=staging, errors=errors))
    return cur.rowcount


def staging_types(conn: psycopg.Connection, staging: sql.Identifier) -> dict[str, str]:
    """The staged columns' types (``format_type``)."""
    return dict(conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                             " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                             (staging.as_string(conn),)).fetchall())


def field_checks(plan: EntityPlan, *, staging_types: dict[str, str], server_version: int) -> list[sql.Composable]:
    """Per written field, the rules its staged value must pass, as SQL over the staging row ``s``.

    Each yields NULL or a message naming the field and the rule: a NOT NULL column left empty, a
    value longer than the column holds, a text value that does not read as the column's type
    (shown cut to a few dozen characters: a 5 MB bad value must not become a 5 MB error).
    """
    checks: list[sql.Composable] = []
    for name in plan.write_fields:
        column = plan.table.columns[name]
        field = ident("s", name)
        if not column.nullable:
            checks.append(sql.SQL("CASE WHEN {f} IS NULL THEN {m} END").format(
                f=field, m=sql.Literal(f"{name}: required, but empty ({plan.table.qualified}.{name} is NOT NULL)")))
        if column.char_max_length:
            checks.append(sql.SQL("CASE WHEN length(({f})::text) > {n} THEN {m1} || length(({f})::text) || {m2} END"
                                  ).format(f=field, n=sql.Literal(column.char_max_length), m1=sql.Literal(f"{name}: "),
                                           m2=sql.Literal(f" characters, {plan.table.qualified}.{name}"
                                                          f" holds {column.char_max_length}")))
        staged = staging_types.get(name, "text").split("(")[0]
        if staged in _TEXTUAL and column.data_type.split("(")[0] not in _TEXTUAL:
            valid = (sql.SQL("pg_input_is_valid(({})::text, {})") if server_version >= 160000
                     else sql.SQL("import_control.castable(({})::text, {})")).format(field, sql.Literal(column.data_type))
            if server_version < 160000 and (certain := _CERTAINLY_VALID.get(column.data_type.split("(")[0])):
                # castable runs a statement in a subtransaction per value: values of the usual
                # shape, which no setting can make invalid, skip it
                valid = sql.SQL("(({})::text ~ {} OR {})").format(field, sql.Literal(certain), valid)
            checks.append(sql.SQL("CASE WHEN {f} IS NOT NULL AND NOT {valid} THEN {m1} || {shown} || {m2} END").format(
                f=field, valid=valid, shown=shown_value(field), m1=sql.Literal(f"{name}: "),
                m2=sql.Literal(f" is not a valid {column.data_type} ({plan.table.qualified}.{name})")))
    return checks


def dedupe(run: EntityRun, staged: Staged, *, log: Log = print) -> Staged:
    """Mark duplicates before anything is written.

    Always: rows with the same source identifier collapse (exact, on the natural key; the smallest
    by value survives, so the choice does not depend on the order the source returned them in). With a template ``dedupe`` rule also: records that are the same thing by the rule
    (exact, case-insensitive or fuzzy, weighted confidence, threshold) within the batch, with the
    survivor rule applied, and records matching a row the target already holds.
    """
    from import_pipelines.dedupe.review import (
        SHOWN_PAIRS,
        describe_fields,
        hold_for_review,
        hold_undecided,
        load_decisions,
        record_review,
        write_review_report,
    )
    from import_pipelines.dedupe.staging import apply_rule

    started = time.perf_counter()
    entity = run.template.entities[run.entity_name]
    table = ident(CONTROL_SCHEMA, staged.staging)
    with connect(run.target_url, autocommit=True, purpose=run.purpose("target")) as conn:
        # the rule's blocks are counted and joined in temp tables: hash aggregates, not disk sorts
        configure_bulk_session(conn)
        duplicates = mark_repeated_source_ids(conn, entity, table)
        log(f"{run.entity_name} dedupe: {duplicates:,} repeated source ids ({entity.source_id})")
        if entity.dedupe is None:
            return replace(staged, duplicates=duplicates, confidences=Confidences.certain(duplicates))
        plan = run.plan(conn)
        nk = run.template.natural_key
        decisions = load_decisions(conn, profile=run.profile, entity=run.entity_name)
        # a second session streams the rows while this one takes in their blocking keys
        with conn.transaction(), connect(run.target_url, read_only=True) as reader:
            outcome = apply_rule(conn, staging=table, target=ident(plan.table.schema, plan.table.name),
                                 primary_key=plan.table.primary_key, natural_key=(nk.system_column, nk.id_column),
                                 source_system=plan.source_system, source_id=entity.source_id, rule=entity.dedupe,
                                 survivor_updated=entity.survivor_updated, reader=reader, decisions=decisions)
            record_review(conn, outcome.review, profile=run.profile, entity=run.entity_name, run_id=run.run_id)
            held = hold_for_review(conn, staging=table, source_id=entity.source_id, pairs=outcome.review)
            held += hold_undecided(conn, staging=table, source_id=entity.source_id, profile=run.profile,
                                   entity=run.entity_name)
            review = tuple({"review_id": i, "source_id": p.source_id, "candidate": f"{p.candidate_kind} {p.candidate}",
                            "confidence": p.confidence, "fields": describe_fields(p.fields)}
                           for i, p in outcome.review.read(conn, limit=SHOWN_PAIRS))
            report = write_review_report(conn, outcome.review, profile=run.profile, entity=run.entity_name,
                                         run_id=run.run_id) if outcome.review else None
    mean = f", mean confidence {outcome.mean_confidence:.1f}" if outcome.mean_confidence is not None else ""
    loaded = f", {outcome.of_loaded:,} of records loaded before" if outcome.of_loaded else ""
    log(f"{run.entity_name} dedupe ({entity.dedupe.strategy}): {outcome.within:,} duplicates within the batch{loaded},"
        f" {outcome.against_target:,} matching target rows, {outcome.pairs_compared:,} pairs compared{mean}"
        f" in {time.perf_counter() - started:.2f} s")
    if held:
        log(f"{run.entity_name} dedupe: {held:,} records wait for review ({len(outcome.review):,} pairs listed by"
            " this run" + (f", {report}" if report else "") + f"); list them with `python -m import_pipelines review"
            f" list --profile {run.profile}`")
    return replace(staged, duplicates=duplicates + outcome.within + outcome.of_loaded,
                   matched_target=outcome.against_target,
                   confidences=Confidences.certain(duplicates) + outcome.confidences, review=review,
                   review_count=len(outcome.review), review_report=report)


def mark_repeated_source_ids(conn: psycopg.Connection, entity: Entity, staging: sql.Identifier) -> int:
    """Mark every row of ``staging`` whose source identifier an earlier row already has; return how many.

    The dedupe step's first rule, also run by the preview on its temporary staging table.
    """
    sid = ident(entity.source_id)
    # hash aggregate first: on a clean source (the usual case) nothing is sorted or rewritten
    repeated = conn.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {sid} IS NOT NULL"
                                    " GROUP BY {sid} HAVING count(*) > 1) AS d").format(t=staging, sid=sid)).fetchone()[0]
    if not repeated:
        return 0
    # the survivor is the smallest record by value, not the first to arrive: a source read
    # without an order (a DISTINCT, a hash join) must pick the same survivor every run, or
    # a re-run would "update" a row to another spelling of the same record
    values = sql.SQL("row({})::text").format(sql.SQL(", ").join(ident(f) for f in entity.fields))
    cur = conn.execute(sql.SQL(
        "UPDATE {t} AS s SET _dup_of = (d.first_sid)::text, _confidence = 100 FROM ("
        " SELECT _rn, {sid} AS first_sid, row_number() OVER (PARTITION BY {sid} ORDER BY {values}, _rn) AS k"
        " FROM {t} WHERE {sid} IS NOT NULL) AS d WHERE d.k > 1 AND s._rn = d._rn").format(
        t=staging, sid=sid, values=values))
    return cur.rowcount


def load(run: EntityRun, staged: Staged, *, log: Log = print, preview_rows: int = 5) -> LoadResult:
    """Merge the staged rows through the engine, batch by batch (each atomic with its audit rows), then drop staging.

    One run at a time per profile and entity: a second run of the same profile (launched past
    the queue) waits here for the first one's load instead of colliding with it row by row.
    """
    with connect(run.target_url, autocommit=True, purpose=run.purpose("target")) as conn:
        configure_bulk_session(conn)
        plan = run.plan(conn)
        ref, streams = register(conn, run)
        if staged.rows == 0 and not run.dry_run:
            # nothing staged (a sync that found nothing new or changed): only the counts to record
            counts = Counter(staged.unread)
            record_summary(conn, run=ref, stream_id=streams[run.entity_name], source_rows=sum(counts.values()),
                           counts=counts, seconds=time.perf_counter() - staged.started)
            _after_load(conn, run, staged, ref=ref, streams=streams, log=log)
            drop_staging(conn, staged.staging)
            return LoadResult(counts={a: counts.get(a, 0) for a in ACTIONS if a != "rolled_back"},
                              rows=sum(counts.values()), seconds=time.perf_counter() - staged.started,
                              duplicates=staged.duplicates, preview=[], preview_columns=[])
        lock = (hash_key(run.profile), hash_key(run.entity_name))
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock).fetchone()[0]:
            log(f"{run.entity_name} load: another run of profile {run.profile!r} is loading {run.entity_name};"
                " waiting for it to finish")
            conn.execute("SELECT pg_advisory_lock(%s, %s)", lock)
        try:
            counts = _merge(conn, run, plan, staged, ref=ref, streams=streams, log=log)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)
        report = error_report = None
        if run.dry_run:
            preview, columns = dry_run_preview(conn, plan.merge, run.run_id, preview_rows)
            report = write_dry_run_report(conn, plan.merge, run_id=run.run_id)
            log(f"{run.entity_name} dry run: nothing written to {plan.table.qualified}; report {report}")
        else:
            preview, columns = _preview(conn, plan, ref, streams[run.entity_name], preview_rows)
            if counts.get("failed"):
                from import_pipelines.pipeline.row_errors import report_row_errors

                error_report = report_row_errors(conn, entity=plan.entity, staging=staged.staging, run=ref,
                                                 stream_id=streams[run.entity_name], profile=run.profile,
                                                 entity_name=run.entity_name, log=log)
        _after_load(conn, run, staged, ref=ref, streams=streams, log=log)
        drop_staging(conn, staged.staging)
    seconds = time.perf_counter() - staged.started
    return LoadResult(counts={a: counts.get(a, 0) for a in ACTIONS if a != "rolled_back"},
                      rows=staged.rows + sum(staged.unread.values()),
                      seconds=seconds, duplicates=staged.duplicates, preview=preview, preview_columns=columns,
                      matched_target=staged.matched_target, confidences=staged.confidences, dry_run=run.dry_run,
                      report=report, error_report=error_report)


def _after_load(conn: psycopg.Connection, run: EntityRun, staged: Staged, *, ref: RunRef, streams: dict[str, int],
                log: Log) -> None:
    """A records entity's read: records gone from the source, the sync cursor, its raw records (after the commits)."""
    if run.template.entities[run.entity_name].records is not None:
        from import_pipelines.pipeline.record_reads import after_load

        after_load(conn, run, staging=staged.staging, ref=ref, stream_id=streams[run.entity_name], log=log)


def hash_key(text: str) -> int:
    """A stable signed 32-bit key for an advisory lock."""
    import zlib

    return zlib.crc32(text.encode()) - (1 << 31)


def _merge(conn: psycopg.Connection, run: EntityRun, plan: EntityPlan, staged: Staged, *, ref: RunRef,
           streams: dict[str, int], log: Log):
    merge = plan.merge
    system = run.template.natural_key.system_column
    placeholders = None if run.dry_run else create_placeholders(
        conn, [merge], marker_column=lambda table: system).rows
    unread = Counter(staged.unread)
    if not run.dry_run:
        # a retried step, or a re-execution from failure on this staging: what committed stays as it is
        earlier = set_aside_merged(conn, staging=staged.staging, run=ref, stream_id=streams[run.entity_name])
        if earlier:
            log(f"{run.entity_name} load: {sum(earlier.values()):,} records were merged by an earlier attempt ("
                + ", ".join(f"{a} {n:,}" for a, n in sorted(earlier.items())) + "); the rest are merged now")
            unread.update(earlier)
    last = conn.execute(sql.SQL("SELECT greatest(max(_rn), 0) FROM {}").format(
        ident(CONTROL_SCHEMA, staged.staging))).fetchone()[0]

    def epilogue(session: psycopg.Connection) -> None:
        if not is_small_change(session, merge, last):  # a few changed records leave its statistics as they were
            session.execute(sql.SQL("ANALYZE {}.record_state").format(CONTROL))
        if plan.entity.dedupe is not None:
            # a duplicate points at the row its survivor became, which any batch may have
            # written; planned on fresh statistics, which know this entity's state rows (stale
            # ones, which do not, made the state lookup scan every row of the entity per duplicate)
            record_duplicate_states(session, staging=staged.staging, stream_id=streams[run.entity_name],
                                    run_seq=ref.run_seq, source_id=merge.source_id)

    # the merging sessions are the load's own: this one holds the load's lock and writes the summary,
    # and a merging session may be lost and replaced (a dropped connection retries its batch)
    _, counts, _ = load_staged(merge, conn=conn, connect=lambda: connect(run.target_url, autocommit=True),
                               staging=staged.staging, run=ref, streams=streams, rows=last,
                               batch_rows=run.rows_per_batch, workers=run.workers, log=log, dry_run=run.dry_run,
                               placeholders=placeholders, epilogue=None if run.dry_run else epilogue,
                               unread=unread, merge_on_caller=False,
                               error_budget=ErrorBudget(run.template.error_rate_budget(run.entity_name),
                                                        floor=run.template.error_budget_floor))
    return counts


def _preview(conn, plan: EntityPlan, run: RunRef, stream_id: int, limit: int) -> tuple[list[dict], list[str]]:
    columns = [plan.table.primary_key, plan.template.natural_key.id_column, *plan.write_fields,
               *(r.name for r in plan.merge.refs)]
    rows = conn.execute(sql.SQL(
        # the audit's text ids are cast to the key's type, so the rows are found by primary key
        "SELECT {cols} FROM {t} WHERE {pk} IN (SELECT (target_id)::{pk_type} FROM {control}.audit_records"
        " WHERE run_day = %s AND run_seq = %s AND stream_id = %s AND action IN ('created', 'updated') LIMIT %s)"
        " ORDER BY {pk}").format(
        cols=sql.SQL(", ").join(ident(c) for c in columns), t=ident(plan.table.schema, plan.table.name),
        pk=ident(plan.table.primary_key), pk_type=sql.SQL(plan.table.key_type()), control=CONTROL),
        (run.run_day, run.run_seq, stream_id, limit)).fetchall()
    return [dict(zip(columns, r)) for r in rows], columns
