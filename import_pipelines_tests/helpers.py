"""Test helpers shared by several test modules."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from import_pipelines.pipeline.steps import EntityRun, LoadResult, dedupe, extract, load, map_and_validate
from import_pipelines.templates.model import Mode, Template


def run_import(*, template: Template, source_url: str, target_url: str, profile: str = "demo", mode: Mode | None = None,
               entities: list[str] | None = None, batch_rows: int | None = None,
               run_id: str | None = None, log: Callable[[str], None] | None = None) -> dict[str, LoadResult]:
    """Run extract -> map_and_validate -> dedupe -> load for each entity in template order, as the job does.

    Returns the load result per entity; ``run_id`` defaults to a fresh UUID (one per call); ``log``
    hears the steps' log lines.
    """
    run_id = run_id or str(uuid.uuid4())
    quiet = log or (lambda message: None)
    results: dict[str, LoadResult] = {}
    for name in template.entities:
        if entities is not None and name not in entities:
            continue
        run = EntityRun(profile=profile, template=template, entity_name=name, run_id=run_id, source_url=source_url,
                        target_url=target_url, mode=mode, batch_rows=batch_rows)
        staged = dedupe(run, map_and_validate(run, extract(run, log=quiet), log=quiet), log=quiet)
        results[name] = load(run, staged, log=quiet)
    return results
