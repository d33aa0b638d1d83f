"""The template's late-seed step: the engine's late seed over every entity of one profile's run."""

from __future__ import annotations

from import_pipelines.control import ensure_control_schema
from import_pipelines.db.connect import connection
from import_pipelines.engine.audit import register_run, stream_ids
from import_pipelines.engine.late_seed import LateSeedOutcome, create_placeholders, late_seed
from import_pipelines.pipeline.plan import build_plan
from import_pipelines.templates.model import Template


def resolve_pending(url: str, *, template: Template, profile: str, run_id: str, source_system: str,
                    run_group: str | None = None) -> LateSeedOutcome:
    """Fill every reference the run group deferred; record the unresolvable ones in ``import_errors``.

    Runs as one transaction: either every resolvable reference is written and the pending rows
    are cleared, or (on an error) the target is left as it was before this phase.
    """
    with connection(url, autocommit=True) as conn:
        ensure_control_schema(conn)
        run = register_run(conn, run_id=run_id, profile=profile, run_group=run_group)
        plans = [build_plan(conn, template=template, entity_name=name, profile=profile,
                            source_system=source_system).merge for name in template.entities]
        plans = [plan for plan in plans if plan.deferred]
        system = template.natural_key.system_column
        placeholders = create_placeholders(conn, plans, marker_column=lambda table: system)
        return late_seed(conn, run=run, plans=plans, stream_ids=stream_ids(conn, profile), placeholders=placeholders)
