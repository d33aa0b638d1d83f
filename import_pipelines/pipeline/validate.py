"""The template's validate step: an entity's expectations over its staged rows, after the field rules."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from import_pipelines.control import CONTROL_SCHEMA
from import_pipelines.db.sql import ident
from import_pipelines.validation import record_results, validate_staged


def validate_entity(conn: psycopg.Connection, run, staged, *, log: Callable[[str], None] = print) -> int:
    """Run the entity's ``validate`` expectations on ``staged`` and keep their summary; return the rows newly failed.

    ``run`` is an :class:`~import_pipelines.pipeline.steps.EntityRun`, ``staged`` its
    :class:`~import_pipelines.pipeline.steps.Staged`.
    """
    from import_pipelines.pipeline.steps import register, staging_types

    started = time.perf_counter()
    entity = run.template.entities[run.entity_name]
    table = ident(CONTROL_SCHEMA, staged.staging)
    outcome = validate_staged(conn, expectations=list(entity.validate_), staging=table, rows=staged.rows,
                              types=staging_types(conn, table), where=f"entities.{run.entity_name}.validate",
                              log=lambda message: log(f"{run.entity_name} validate: {message}"))
    ref, streams = register(conn, run)
    record_results(conn, run_seq=ref.run_seq, stream_id=streams[run.entity_name], results=outcome.results)
    for r in outcome.results:
        log(f"{run.entity_name} validate: {r.expectation} on {', '.join(r.fields)} ({r.engine}): {r.failed:,} of"
            f" {r.evaluated:,} rows failed")
    log(f"{run.entity_name} validate: {outcome.newly_failed:,} rows failed no earlier rule, in"
        f" {time.perf_counter() - started:.2f} s")
    return outcome.newly_failed
