"""One read of a record source per run, shared by the entities it feeds, and the sync cursor it moves.

A records entity whose source is an API (Airtable, an HTTP JSON API), that reads incrementally,
that other entities are derived from (``records: {from_entity: cases}``), or that has a rule for
records deleted at the source is extracted through a *read*: the entity that owns the records
(the one with the inputs) streams them once per run into a raw table in ``import_control``, and
every entity fed by it (the owner and those derived from it) computes its own fields from that
table into its own staging. The read is registered in ``import_control.record_reads`` with what
the source reported: the lower bound it was asked for, the greatest modification time it saw,
whether it was complete, what the requests cost. So one API read feeds two target tables, and
the extract steps of those entities, which Dagster runs side by side (in separate processes with
the multiprocess executor), find each other through the target database:

- the first to arrive takes a session advisory lock on the read's *scope* (for Airtable the base,
  for an API its rate-limit scope) and reads; the others wait on the lock and then take the read
  it registered. The lock also keeps two reads of one Airtable base apart, in whatever process
  they run, and a read starts no sooner than one rate-limit window after the last read of its
  scope finished: each process has its own limiter, and a fresh limiter's first requests could
  otherwise meet the previous reader's last ones inside Airtable's one-second window;
- an incremental read asks for the records changed since the entity's sync cursor
  (:mod:`import_pipelines.control.cursors`), less the source's look-back; a full-refresh run
  (``ImportRunSettings.full_refresh``) and the first run read everything.

**When the cursor moves.** The load commits batch by batch, so there is no one transaction that
holds a whole run's data; the cursor is written right after the load step's last commit, by the
last entity fed by the read to finish its load (:func:`after_load`, called by the load step),
in the transaction that records that entity as loaded. A run that fails before that leaves the
cursor where it was, and a crash between the last batch and the cursor costs only a re-read of
records whose hashes make them ``unchanged``: the cursor can lag the data, never lead it. The
engine is not involved. The new mark is the read's greatest modification time, but never past
a record that failed in any entity fed by the read: it stops just before the earliest of them, so
the next run reads that record again (and a failed record without a modification time keeps the
cursor where it was).

**Records deleted at the source.** Only a complete read (the whole table, every page, no filter)
can show that a record is gone. After such a read each entity with a rule other than ``leave``
records, in ``import_control.source_gone``, the source ids its state knows that the read did not
see (:func:`record_gone`); the profile's ``source_deletions`` step applies the rule once every
entity has loaded (:mod:`import_pipelines.pipeline.source_deletes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.control.cursors import advance_cursor, read_cursor
from import_pipelines.db.connect import connect
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import RunRef
from import_pipelines.engine.staging import drop_staging, index_staging, staging_name
from import_pipelines.sources.ratelimit import DEFAULT_MARGIN_S
from import_pipelines.templates.model import Entity, SourceDelete, SourceDeleteAction, Template

if TYPE_CHECKING:
    from import_pipelines.pipeline.steps import EntityRun, Staged

Log = Callable[[str], None]

_LOCK_SPACE = "import_pipelines.record_read"
# a read starts no sooner than this after the last read of its scope finished (the rate limiter's window)
PACE_S = 1.0 + DEFAULT_MARGIN_S


@dataclass(frozen=True)
class RecordRead:
    """One registered read: where its raw records are and what the source reported."""

    owner: str  # the entity whose records these are
    raw_table: str  # in import_control
    source: str  # the source's name (no secrets)
    since: datetime | None
    max_modified: datetime | None
    complete: bool
    records: int
    consumers: tuple[str, ...]
    mapping: dict[str, Any]  # {"columns": {input: where}, "custom": [...], "method": ...}


def reads_shared(template: Template, entity_name: str, *, record_source: Mapping[str, Any] | None,
                 on_source_delete: SourceDeleteAction | None = None) -> bool:
    """Whether ``entity_name`` is extracted through a registered read (see the module docstring).

    Files, sheets and pushes read by one entity only, with no cursor and no deletion rule, stage
    their records directly (:func:`import_pipelines.extract.records.stage_records`).
    """
    from import_pipelines.pipeline.records import API_KINDS

    records = template.entities[entity_name].records
    if records is None:
        return False
    owner = template.read_owner(entity_name)
    owner_records = template.entities[owner].records
    assert owner_records is not None
    kind = {**(record_source or {}), **owner_records.source}.get("kind")
    return (owner != entity_name or len(template.read_consumers(owner)) > 1 or owner_records.incremental
            or kind in API_KINDS
            or delete_rule(template, entity_name, override=on_source_delete).action != "leave")


def delete_rule(template: Template, entity_name: str, *, override: SourceDeleteAction | None = None) -> SourceDelete:
    """The entity's rule for records deleted at the source: the template's, its action overridden by the profile."""
    rule = template.entities[entity_name].on_source_delete or SourceDelete()
    if override is None or override == rule.action:
        return rule
    if override == "deactivate" and not rule.column:
        raise ValueError(f"entity {entity_name!r}: on_source_delete deactivate needs the column that marks a row"
                         f" inactive; the template names none (entities.{entity_name}.on_source_delete.column)")
    return rule.model_copy(update={"action": override})


def source_spec(template: Template, owner: str, record_source: Mapping[str, Any] | None, *, profile: str
                ) -> dict[str, Any]:
    """The source the owner entity reads: the profile's, narrowed by the entity's ``records.source``."""
    records = template.entities[owner].records
    assert records is not None
    if record_source is None:
        raise ValueError(f"entity {owner!r} reads records, but profile {profile!r} names no record source"
                         " (source: {kind: file|sheet|push|airtable|http, ...})")
    return {**record_source, **records.source}


def check_incremental(owner: str, *, records_source: Mapping[str, Any], incremental: bool) -> None:
    """An incremental entity's source must say where the mark comes from; refused before anything is read.

    Without it, every read would find no high-water mark, the cursor would never be set, and the
    entity would silently read everything every run.
    """
    from import_pipelines.sources.records import SourceError

    if not incremental:
        return
    kind = records_source.get("kind")
    needed = {"airtable": ("modified_field",), "http": ("since_param", "modified_path")}.get(str(kind))
    if needed is None:
        raise SourceError(f"entity {owner!r} reads incrementally (entities.{owner}.records.incremental), but a {kind}"
                          " source cannot be asked for the records changed since a moment (airtable, http can)")
    missing = [name for name in needed if not records_source.get(name)]
    if missing:
        raise SourceError(f"entity {owner!r} reads incrementally, but its source names no {' and no '.join(missing)}"
                          f" (the profile's source, or entities.{owner}.records.source)")


def stored_read(conn: psycopg.Connection, *, run_id: str, profile: str, owner: str) -> RecordRead | None:
    """The read this run registered for ``owner``, if any."""
    row = conn.execute(
        "SELECT raw_table, source, since, max_modified, complete, records, consumers, mapping"
        " FROM import_control.record_reads WHERE run_id = %s AND profile = %s AND entity = %s",
        (run_id, profile, owner)).fetchone()
    if row is None:
        return None
    return RecordRead(owner, row[0], row[1], row[2], row[3], row[4], row[5], tuple(row[6]), row[7])


def shared_read(run: EntityRun, *, target: psycopg.Connection, log: Log) -> RecordRead:
    """The run's read of the records ``run.entity_name`` is computed from: this process's, or another's.

    ``target`` is an autocommit session. The read, when this call makes it, is committed before
    it returns.
    """
    from import_pipelines.pipeline.records import open_source
    from import_pipelines.pipeline.steps import hash_key

    template: Template = run.template
    owner = template.read_owner(run.entity_name)
    found = stored_read(target, run_id=run.run_id, profile=run.profile, owner=owner)
    if found is not None:
        return found
    spec = source_spec(template, owner, run.record_source, profile=run.profile)
    records = template.entities[owner].records
    assert records is not None
    check_incremental(owner, records_source=spec, incremental=records.incremental)
    since = None
    if records.incremental and run.change_detection != "full":
        cursor = read_cursor(target, profile=run.profile, entity=owner)
        since = cursor.high_water_mark if cursor is not None else None
    source = open_source(spec, name=owner, since=since, log=log)
    api_scope = getattr(source, "rate_limit_scope", None)
    scope = api_scope or f"read:{run.profile}/{owner}"
    lock = (hash_key(_LOCK_SPACE), hash_key(scope))
    with connect(run.target_url, autocommit=True, purpose=run.purpose("target")) as holder:
        if not holder.execute("SELECT pg_try_advisory_lock(%s, %s)", lock).fetchone()[0]:
            log(f"{run.entity_name} extract: waiting for another read of {source.name}")
            holder.execute("SELECT pg_advisory_lock(%s, %s)", lock)
        try:
            found = stored_read(target, run_id=run.run_id, profile=run.profile, owner=owner)
            if found is not None:
                log(f"{run.entity_name} extract: the records of {owner} were read once in this run; using them")
                return found
            if api_scope is not None:
                _pace(holder, scope)
            try:
                return _read(run, owner=owner, source=source, since=since, scope=scope, target=target, log=log)
            except BaseException:
                if api_scope is not None:
                    time.sleep(PACE_S)  # a failed read registers no finish time for the next reader to wait on
                raise
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s, %s)", lock)


def _pace(conn: psycopg.Connection, scope: str) -> None:
    """Wait until one rate-limit window has passed since the last read of ``scope`` finished (by the server's clock)."""
    wait = conn.execute("SELECT extract(epoch FROM max(finished_at) + make_interval(secs => %s) - clock_timestamp())"
                        " FROM import_control.record_reads WHERE scope = %s", (PACE_S, scope)).fetchone()[0]
    if wait is not None and wait > 0:
        time.sleep(min(float(wait), PACE_S))


def _read(run: EntityRun, *, owner: str, source: Any, since: datetime | None, scope: str,
          target: psycopg.Connection, log: Log) -> RecordRead:
    """Map the owner's inputs, stream the source into a raw table, register the read; commit."""
    from import_pipelines.extract.records import stage_raw
    from import_pipelines.pipeline.records import map_columns

    template: Template = run.template
    entity = template.entities[owner]
    assert entity.records is not None
    started = target.execute("SELECT clock_timestamp()").fetchone()[0]
    mapping = map_columns(source, entity, template=template, conn=target, mapper=run.mapper)
    method = mapping.suggestion.method if mapping.suggestion else "template"
    log(f"{owner} read: {source.name}: inputs read from "
        + ", ".join(f"{name} <- {where!r}" for name, where in mapping.columns.items())
        + (f"; custom fields {', '.join(map(repr, mapping.custom))}" if mapping.custom else "") + f" ({method})"
        + (f"; records modified since {since.isoformat()} less the look-back" if since else "; every record"))
    raw = staging_name(run.profile, f"{owner}_raw", run.run_id)
    consumers = template.read_consumers(owner)
    target.autocommit = False
    try:
        count = stage_raw(source=source, inputs=list(entity.records.inputs), columns=mapping.columns,
                          custom=mapping.custom, target=target, table=raw, run_id=run.run_id,
                          progress=lambda done, total: log(f"{owner} read: {done:,} records"))
        report = getattr(source, "report", None)
        window = getattr(report, "since", None)
        max_modified = getattr(report, "max_modified", None)
        complete = bool(getattr(report, "complete", False))
        recorded = {"columns": {name: where for name, where in mapping.columns.items()}, "custom": list(mapping.custom),
                    "method": method}
        target.execute(
            "INSERT INTO import_control.record_reads (run_id, profile, entity, scope, raw_table, source, since,"
            " max_modified, complete, records, consumers, mapping, report, started_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (run.run_id, run.profile, owner, scope, raw, source.name, window, max_modified, complete, count, consumers,
             Jsonb(recorded), Jsonb(report.as_metadata()) if hasattr(report, "as_metadata") else None, started))
        # the entity's reads are kept as long as its per-record audit
        target.execute("DELETE FROM import_control.record_reads WHERE profile = %s AND entity = %s"
                       " AND finished_at < now() - make_interval(days => %s)", (run.profile, owner, run.retention_days))
        target.commit()
    except BaseException:
        target.rollback()
        raise
    finally:
        target.autocommit = True
    return RecordRead(owner, raw, source.name, window, max_modified, complete, count, tuple(consumers), recorded)


def extract_from_read(run: EntityRun, entity: Entity, *, target: psycopg.Connection, staging: str, started: float,
                      log: Log) -> Staged:
    """The extract step of a records entity fed by a read: the shared read, then its own fields into staging."""
    from import_pipelines.extract.records import fields_from_raw
    from import_pipelines.pipeline.steps import Staged

    read = shared_read(run, target=target, log=log)
    target.autocommit = False
    rows = fields_from_raw(target, entity, raw_table=ident(CONTROL_SCHEMA, read.raw_table), table=staging,
                           run_id=run.run_id, temporary=False, source_name=read.source)
    index_staging(target, staging)
    target.commit()
    failed = target.execute(sql.SQL("SELECT count(*) FROM {} WHERE _error IS NOT NULL").format(
        ident(CONTROL_SCHEMA, staging))).fetchone()[0]
    seconds = time.perf_counter() - started
    derived = f" (derived from the records of {read.owner})" if read.owner != run.entity_name else ""
    kept = f" ({read.records - rows:,} of the {read.records:,} read left out by records.where)" \
        if rows != read.records else ""
    log(f"{run.entity_name} extract: {rows:,} records staged{derived}{kept} in {seconds:.2f} s"
        + (f", {failed:,} of them could not be read" if failed else ""))
    return Staged(staging=staging, rows=rows, started=started, extract_seconds=seconds, invalid=failed,
                  mapping={name: str(where) for name, where in read.mapping["columns"].items()},
                  mapping_method=read.mapping["method"])


def record_gone(conn: psycopg.Connection, *, entity: Entity, staging: str, stream_id: int, run_seq: int,
                log: Log, name: str) -> int:
    """Keep the source ids the stream's state knows that a complete read did not see; return how many.

    A staged record without a source id makes the read's set of ids unknowable, so then nothing
    is taken as gone. Earlier runs' candidates of the stream are replaced.
    """
    sid = ident(entity.source_id)
    table = ident(CONTROL_SCHEMA, staging)
    with conn.transaction():
        conn.execute("DELETE FROM import_control.source_gone WHERE stream_id = %s", (stream_id,))
        unknown = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(table, sid)).fetchone()[0]
        if unknown:
            log(f"{name} load: {unknown:,} records read without a source id ({entity.source_id}), so the set of"
                " source ids is not known: no record is taken as deleted at the source")
            return 0
        gone = conn.execute(sql.SQL(
            "INSERT INTO import_control.source_gone (run_seq, stream_id, source_id, target_id)"
            " SELECT %s, rs.stream_id, rs.source_id, rs.target_id FROM import_control.record_state AS rs"
            " WHERE rs.stream_id = %s AND NOT EXISTS (SELECT 1 FROM {} AS s WHERE ({})::text = rs.source_id)").format(
            table, ident("s", entity.source_id)), (run_seq, stream_id)).rowcount
    if gone:
        log(f"{name} load: {gone:,} records known from earlier runs are no longer in the source (a complete read)")
    return gone


def after_load(conn: psycopg.Connection, run: EntityRun, *, staging: str, ref: RunRef | None,
               stream_id: int | None, log: Log) -> None:
    """What the load step does once the entity's rows have committed (or, in a dry run, were predicted).

    Keeps the records a complete read no longer found (where the entity's rule is not ``leave``),
    marks the entity as having loaded the run's read, and when it is the last entity fed by that
    read: moves the sync cursor (not in a dry run) and drops the raw records. ``conn`` is an
    autocommit session; the staging table still exists.
    """
    template: Template = run.template
    entity = template.entities[run.entity_name]
    if not reads_shared(template, run.entity_name, record_source=run.record_source,
                        on_source_delete=run.on_source_delete):
        return
    owner = template.read_owner(run.entity_name)
    read = stored_read(conn, run_id=run.run_id, profile=run.profile, owner=owner)
    if read is None:
        return
    rule = delete_rule(template, run.entity_name, override=run.on_source_delete)
    if not run.dry_run and rule.action != "leave" and ref is not None and stream_id is not None:
        if read.complete:
            record_gone(conn, entity=entity, staging=staging, stream_id=stream_id, run_seq=ref.run_seq, log=log,
                        name=run.entity_name)
        else:
            log(f"{run.entity_name} load: the read was not complete ({'incremental' if read.since else 'filtered'}),"
                " so no record is taken as deleted at the source")
    with conn.transaction():
        row = conn.execute(
            "UPDATE import_control.record_reads SET loaded = CASE WHEN %s = ANY(loaded) THEN loaded"
            " ELSE array_append(loaded, %s) END WHERE run_id = %s AND profile = %s AND entity = %s"
            " RETURNING loaded, consumers",
            (run.entity_name, run.entity_name, run.run_id, run.profile, owner)).fetchone()
        if row is None or not set(row[1]) <= set(row[0]):
            return
        if not run.dry_run and read.max_modified is not None and ref is not None:
            _advance(conn, run, read=read, ref=ref, log=log)
        drop_staging(conn, read.raw_table)


def _advance(conn: psycopg.Connection, run: EntityRun, *, read: RecordRead, ref: RunRef, log: Log) -> None:
    """Move the owner's cursor to the read's mark, held before the earliest record that failed."""
    raw = ident(CONTROL_SCHEMA, read.raw_table)
    streams = [r[0] for r in conn.execute("SELECT stream_id FROM import_control.streams WHERE profile = %s"
                                          " AND entity = ANY(%s)", (run.profile, list(read.consumers)))]
    any_failed = conn.execute("SELECT coalesce(sum(failed), 0) > 0 FROM import_control.run_summaries"
                              " WHERE run_seq = %s AND stream_id = ANY(%s)", (ref.run_seq, streams)).fetchone()[0]
    failed, undated, earliest = (0, 0, None) if not any_failed else conn.execute(sql.SQL(
        "SELECT count(*), count(*) FILTER (WHERE r._modified IS NULL), min(r._modified) FROM {} AS r"
        " WHERE EXISTS (SELECT 1 FROM {}.audit_records AS a WHERE a.run_day = %s AND a.run_seq = %s"
        " AND a.stream_id = ANY(%s) AND a.action = 'failed'"
        " AND a.source_ref = COALESCE(r._source_ref, %s || ' line ' || r._line))").format(raw, ident(CONTROL_SCHEMA)),
        (ref.run_day, ref.run_seq, streams, read.source)).fetchone()
    mark = read.max_modified
    if undated:
        log(f"{read.owner} cursor: {failed:,} records failed, {undated:,} of them without a modification time;"
            " the cursor stays where it was so they are read again")
        return
    if earliest is not None and earliest - timedelta(microseconds=1) < mark:
        mark = earliest - timedelta(microseconds=1)
        log(f"{read.owner} cursor: {failed:,} records failed; held before the earliest of them ({earliest.isoformat()})"
            " so the next run reads them again")
    cursor = advance_cursor(conn, profile=run.profile, entity=read.owner, mark=mark, run_id=run.run_id)
    log(f"{read.owner} cursor: {cursor.high_water_mark.isoformat()} (set by run {cursor.run_id})")

