"""Build a profile's Dagster definitions from its validated template."""

# no ``from __future__ import annotations``: Dagster inspects the ops' context annotations at
# definition time, so they must be real classes

import os
from typing import TYPE_CHECKING, Any

import dagster as dg

from import_pipelines.components.retries import STEP_RETRY_POLICY, retry_transient_only
from import_pipelines.dedupe.confidences import BUCKET, Confidences
from import_pipelines.templates.model import Template

if TYPE_CHECKING:
    from import_pipelines.components.profile import ImportProfile
    from import_pipelines.pipeline.steps import EntityRun, LoadResult

KINDS = {"postgres", "python"}


def build_profile_defs(profile: "ImportProfile", template: Template, *, resources: dict[str, Any],
                       template_source: str | None = None) -> dg.Definitions:
    """Preflight, assets per entity (graph-backed: extract -> map -> dedupe -> load), late_seed, checks, job, schedule.

    ``template_source`` (the template's file) is what preflight errors name.
    """
    from import_pipelines.templates.graph import chain_depth, dependency_order, upstream_entities

    group = profile.name
    depth = chain_depth(template)
    assets = [_preflight_asset(profile, template, template_source=template_source or template.name,
                               depth=max(depth.values(), default=0))]
    assets += [_entity_asset(profile, template, name, upstream_entities(template, name), depth=depth[name])
               for name in dependency_order(template)]
    assets.append(_late_seed_asset(profile, template))
    from import_pipelines.components.source_deletions import source_deletions_assets

    assets += source_deletions_assets(profile, template)
    checks = [check for name in template.entities for check in _entity_checks(profile, template, name)]
    job = dg.define_asset_job(
        f"{profile.name}_import", selection=dg.AssetSelection.groups(group),
        description=f"Import {template.name} ({template.description or 'template'}) for profile {profile.name}",
        tags={"import_pipelines/profile": profile.name,
              "import_pipelines/source": record_source_tag(profile.source) or source_tag(profile.source_url_env)})
    schedules = [dg.ScheduleDefinition(name=f"{profile.name}_schedule", job=job, cron_schedule=profile.schedule,
                                       default_status=dg.DefaultScheduleStatus.STOPPED)] if profile.schedule else []
    from import_pipelines.components.notify import notify_sensors
    from import_pipelines.components.sensors import watch_sensors

    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[job], schedules=schedules,
                          sensors=watch_sensors(profile, job) + notify_sensors(profile, job), resources=resources)


def _source_keys(profile: "ImportProfile", template: Template) -> set[str]:
    """The resources the source side needs: the PostgreSQL source for query entities, the field
    mapper for records entities."""
    kinds = {entity.query is not None for entity in template.entities.values()}
    return ({f"{profile.name}_source"} if True in kinds else set()) | (
        {f"{profile.name}_field_mapper"} if False in kinds else set()) | (
        {f"{profile.name}_push"} if (profile.source or {}).get("kind") == "push" else set())


def record_source_tag(source: dict[str, Any] | None) -> str | None:
    """The run queue's key for an API source: its rate-limit scope (an Airtable base, an API's origin); else None.

    Two profiles reading one Airtable base share its 5 requests per second, so they queue.
    """
    kind = (source or {}).get("kind")
    if kind == "airtable" and source.get("base"):
        from import_pipelines.sources.airtable import DEFAULT_ENDPOINT, base_scope

        return base_scope(str(source["base"]), str(source.get("endpoint_url") or DEFAULT_ENDPOINT))
    if kind == "http" and source.get("url"):
        from import_pipelines.pipeline.records import open_source

        return open_source(source).rate_limit_scope
    return None


def source_tag(url_env: str) -> str:
    """The run queue's one-import-per-source key: the source database's identity (host, port, database).

    Two profiles that read the same database share it, whatever their variables are called; the
    user name and password are never part of it. Read when the code location loads, which is
    where the variable is set; unset or malformed, the key falls back to the variable's name.
    """
    from import_pipelines.db.connect import DatabaseConnectionError, database_identity

    url = os.environ.get(url_env)
    if not url:
        return f"unset:{url_env}"
    try:
        return database_identity(url)
    except DatabaseConnectionError:
        return f"malformed:{url_env}"


def _preflight_asset(profile: "ImportProfile", template: Template, *, template_source: str,
                     depth: int) -> dg.AssetsDefinition:
    keys = {f"{profile.name}_target"} | _source_keys(profile, template)

    @dg.asset(name="preflight", key_prefix=[profile.name], group_name=profile.name, kinds=KINDS,
              required_resource_keys=keys, op_tags={"step": "preflight", "dagster/priority": str(2 + len(STEPS) * depth)},
              description="Check the whole template against the source and target schemas before anything is"
                          " written: target tables and writable columns, NOT NULL references, source tables and"
                          " columns (each compiled query planned with LIMIT 0). Every extract waits for it.")
    def preflight(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from import_pipelines.templates.preflight import preflight as check

        source = getattr(context.resources, f"{profile.name}_source", None)
        report = check(template, source_url=source.connection_url() if source is not None else None,
                       target_url=getattr(context.resources, f"{profile.name}_target").connection_url(),
                       profile=profile.name, template_source=template_source, source_system=profile.source_system,
                       mode=profile.mode, entity_modes=profile.entity_modes)
        context.log.info(f"preflight: {report.entities} entities fit the source and the target"
                         f" ({report.seconds:.2f} s)")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0, "entities_checked": report.entities,
                                              "duration_s": round(report.seconds, 3)})

    return preflight


def _entity_run(context: dg.OpExecutionContext, profile: "ImportProfile", template: Template, entity: str) -> "EntityRun":
    from import_pipelines.pipeline.steps import EntityRun

    resources = context.resources
    settings = getattr(resources, f"{profile.name}_settings")
    source = getattr(resources, f"{profile.name}_source", None)
    record_source = dict(profile.source or {})
    if settings.source_path:
        record_source["path"] = settings.source_path
    mode = profile.entity_modes.get(entity, profile.mode)
    push = getattr(resources, f"{profile.name}_push", None)
    if push is not None:  # the records, strategy and match fields of a bulk push
        record_source, template, pushed = push.run_options(template, entity, run_id=context.run.run_id)
        mode = pushed or mode
    return EntityRun(
        profile=profile.name, template=template, entity_name=entity, run_id=context.run.run_id,
        source_url=source.connection_url() if source is not None else "",
        record_source=record_source or None, mapper=getattr(resources, f"{profile.name}_field_mapper", None),
        target_url=getattr(resources, f"{profile.name}_target").connection_url(),
        source_system=profile.source_system, mode=mode,
        batch_rows=profile.batch_rows, workers=profile.workers, dry_run=settings.dry_run,
        run_group=context.run.root_run_id or context.run.run_id, retention_days=profile.retention_days,
        change_detection="full" if settings.full_refresh else "keys",
        on_source_delete=profile.on_source_delete.get(entity))


STEPS = ("extract", "map", "dedupe", "load")


def step_tags(step: str, *, depth: int) -> dict[str, str]:
    """An op's tags: its step, and a ``dagster/priority`` that puts the longest chain of loads first.

    When more steps are ready than the executor runs at once, it starts the highest priority:
    steps of entities with more loads waiting behind them, and within an entity the later step.
    Every import step ranks above the asset checks (priority 0), which nothing waits for.
    """
    return {"step": step, "dagster/priority": str(1 + len(STEPS) * depth + STEPS.index(step))}


def _entity_asset(profile: "ImportProfile", template: Template, entity: str, upstream: list[str], *,
                  depth: int) -> dg.AssetsDefinition:
    prefix = f"{profile.name}__{entity}"
    keys = {f"{profile.name}_target", f"{profile.name}_settings"} | _source_keys(profile, template)
    spec = template.entities[entity]

    @dg.op(name=f"{prefix}__extract", required_resource_keys=keys, tags=step_tags("extract", depth=depth),
           ins={"preflight": dg.In(dg.Nothing)}, retry_policy=STEP_RETRY_POLICY)
    def extract_op(context: dg.OpExecutionContext):
        """Stream the entity's source query into a staging table (read-only source session)."""
        from import_pipelines.pipeline.steps import extract

        with retry_transient_only(f"{entity} extract"):
            staged = extract(_entity_run(context, profile, template, entity), log=context.log.info)
        context.add_output_metadata(mapping_metadata(staged))
        return staged

    @dg.op(name=f"{prefix}__map", required_resource_keys=keys, tags=step_tags("map", depth=depth),
           retry_policy=STEP_RETRY_POLICY)
    def map_op(context: dg.OpExecutionContext, staged):
        """Check mapped values against the target columns; bad rows get an error naming field and rule."""
        from import_pipelines.pipeline.steps import map_and_validate

        with retry_transient_only(f"{entity} map"):
            return map_and_validate(_entity_run(context, profile, template, entity), staged, log=context.log.info)

    @dg.op(name=f"{prefix}__dedupe", required_resource_keys=keys, tags=step_tags("dedupe", depth=depth),
           retry_policy=STEP_RETRY_POLICY)
    def dedupe_op(context: dg.OpExecutionContext, staged):
        """Collapse duplicate source records before anything is written."""
        from import_pipelines.pipeline.steps import dedupe

        with retry_transient_only(f"{entity} dedupe"):
            result = dedupe(_entity_run(context, profile, template, entity), staged, log=context.log.info)
        context.add_output_metadata(review_metadata(result))
        return result

    # one Nothing input per referenced entity, not one fanned-in list: a blocking check on an
    # upstream entity gates each input, which Dagster cannot do inside a fan-in
    @dg.op(name=f"{prefix}__load", required_resource_keys=keys,
           ins={"staged": dg.In(), **{f"after_{name}": dg.In(dg.Nothing) for name in upstream}},
           tags=step_tags("load", depth=depth), retry_policy=STEP_RETRY_POLICY)
    def load_op(context: dg.OpExecutionContext, staged):
        """Merge the staged rows into the target by mode, batch by batch, with audit rows."""
        from import_pipelines.pipeline.steps import load

        with retry_transient_only(f"{entity} load"):
            result = load(_entity_run(context, profile, template, entity), staged, log=context.log.info)
        return dg.Output(result.counts, metadata=materialization_metadata(result, target=spec.target)
                         | review_metadata(staged) | mapping_metadata(staged))

    ins = {name: dg.AssetIn(key=[profile.name, name], dagster_type=dg.Nothing) for name in upstream}
    ins["preflight"] = dg.AssetIn(key=[profile.name, "preflight"], dagster_type=dg.Nothing)

    def compose(preflight, **after):
        # only the load waits for the referenced entities: extract, map and dedupe read the source
        # and staging, so they run while the upstream entities are still loading; every extract
        # waits for the whole template's preflight
        staged = dedupe_op(map_op(extract_op(preflight)))
        return load_op(staged, **{f"after_{name}": done for name, done in after.items()})

    return dg.graph_asset(
        compose, name=entity, key_prefix=[profile.name], ins=ins, group_name=profile.name, kinds=KINDS,
        description=spec.description or f"{entity} from {template.name}",
        metadata={"template": template.name, "target_table": f"{template.target_schema}.{spec.target}",
                  "source_table": spec.source_label},
        tags={"import_pipelines/profile": profile.name})


def materialization_metadata(result: "LoadResult", *, target: str) -> dict[str, Any]:
    """What the UI shows for one entity: counts, throughput, duration and a preview."""
    meta: dict[str, Any] = {"dagster/row_count": dg.MetadataValue.int(result.rows),
                            "dry_run": dg.MetadataValue.bool(result.dry_run)}
    for action, count in result.counts.items():
        meta[f"would_{_verb(action)}" if result.dry_run else action] = dg.MetadataValue.int(count)
    if result.report:
        meta["report"] = dg.MetadataValue.path(result.report)
    if result.error_report:
        meta["error_report"] = dg.MetadataValue.path(result.error_report)
    meta["duplicates"] = dg.MetadataValue.int(result.duplicates)
    meta["matched_target_rows"] = dg.MetadataValue.int(result.matched_target)
    if result.confidences:
        meta["mean_confidence"] = dg.MetadataValue.float(round(result.confidences.mean, 2))
        meta["confidence_histogram"] = dg.MetadataValue.md(confidence_histogram(result.confidences))
    meta["rows_per_s"] = dg.MetadataValue.float(round(result.rows_per_s, 1))
    meta["duration_s"] = dg.MetadataValue.float(round(result.seconds, 3))
    meta["target_table"] = dg.MetadataValue.text(target)
    meta["preview"] = dg.MetadataValue.md(_markdown(result.preview, result.preview_columns))
    return meta


def mapping_metadata(staged: Any) -> dict[str, Any]:
    """A records entity's field mapping: the suggestion and the mapping used as a table, its method and confidence."""
    meta: dict[str, Any] = {}
    if getattr(staged, "mapping_method", None):
        meta["mapping_method"] = dg.MetadataValue.text(staged.mapping_method)
    if getattr(staged, "mapping_table", None):
        meta["mapping"] = dg.MetadataValue.md(staged.mapping_table)
        meta["mapping_confidence"] = dg.MetadataValue.float(staged.mapping_confidence)
    return meta


def review_metadata(staged: Any) -> dict[str, Any]:
    """The pairs waiting for review: a count, a table (the first 200) and the CSV of them all."""
    pairs = list(getattr(staged, "review", ()) or ())
    meta: dict[str, Any] = {"review_pairs": dg.MetadataValue.int(getattr(staged, "review_count", len(pairs)))}
    if pairs:
        columns = ["review_id", "source_id", "candidate", "confidence", "fields"]
        meta["review"] = dg.MetadataValue.table(
            records=[dg.TableRecord({c: pair[c] for c in columns}) for pair in pairs],
            schema=dg.TableSchema(columns=[dg.TableColumn(c, "float" if c == "confidence" else
                                                          "int" if c == "review_id" else "string")
                                           for c in columns]))
        meta["review_report"] = dg.MetadataValue.path(staged.review_report)
    return meta


def _verb(action: str) -> str:
    return {"created": "create", "updated": "update", "skipped": "skip", "failed": "fail"}.get(action, action)


def confidence_histogram(confidences: Confidences) -> str:
    """A markdown histogram of duplicate confidences in 5-point buckets from the lowest seen."""
    peak = max(count for _, count in confidences.buckets)
    lines = ["| confidence | duplicates | |", "|---|---:|---|"]
    for low, count in confidences.buckets:
        bar = "█" * max(1, round(20 * count / peak))
        lines.append(f"| {low}-{low + BUCKET} | {count:,} | {bar} |")
    return "\n".join(lines)


def _markdown(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "_no rows created or updated in this run_"

    def cell(value: object) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 60 else text[:57] + "..."

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _late_seed_asset(profile: "ImportProfile", template: Template) -> dg.AssetsDefinition:
    keys = {f"{profile.name}_target", f"{profile.name}_settings"}

    @dg.asset(name="late_seed", key_prefix=[profile.name], group_name=profile.name, kinds=KINDS,
              deps=[dg.AssetKey([profile.name, e]) for e in template.entities], required_resource_keys=keys,
              description="Resolve references deferred during load (self references and cycles) by natural key, "
                          "in one transaction; unresolved ones are recorded as errors.")
    def late_seed(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from import_pipelines.pipeline.late_seed import resolve_pending

        if getattr(context.resources, f"{profile.name}_settings").dry_run:
            context.log.info("late_seed: dry run, nothing was deferred")
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "dry_run": True})
        target = getattr(context.resources, f"{profile.name}_target").connection_url()
        outcome = resolve_pending(target, template=template, profile=profile.name, run_id=context.run.run_id,
                                  source_system=profile.source_system or template.source_system,
                                  run_group=context.run.root_run_id or context.run.run_id)
        context.log.info(f"late_seed: {outcome.resolved:,} references resolved, {outcome.unresolved:,} unresolved")
        return dg.MaterializeResult(metadata={"dagster/row_count": outcome.resolved + outcome.unresolved,
                                              "resolved": outcome.resolved, "unresolved": outcome.unresolved})

    return late_seed


def _entity_checks(profile: "ImportProfile", template: Template, entity: str) -> list[dg.AssetChecksDefinition]:
    """The entity's checks after load; each is skipped (not passed) in a run that did not materialise it.

    A check op that yields no result leaves its check planned and never evaluated, which Dagster
    shows as skipped once the run ends: a check run on its own, or in a run whose selection left
    the entity out, says nothing about data this run did not write. ``natural_key_unique`` and
    ``reconciliation`` are blocking: the entities that reference this one resolve their references
    by natural key, so they wait for both. ``references_resolved`` runs after the late seed.
    """
    key = dg.AssetKey([profile.name, entity])
    late_seed_key = dg.AssetKey([profile.name, "late_seed"])
    target_key = f"{profile.name}_target"
    system = profile.source_system or template.source_system

    def materialised_here(context: dg.AssetCheckExecutionContext, asset: dg.AssetKey) -> bool:
        event = context.instance.get_latest_materialization_event(asset)
        return event is not None and event.run_id == context.run.run_id

    def check(name: str, description: str, evaluate, *, blocking: bool = False,
              after_late_seed: bool = False) -> dg.AssetChecksDefinition:
        spec = dg.AssetCheckSpec(name, asset=key, description=description, blocking=blocking,
                                 additional_deps=[late_seed_key] if after_late_seed else None)

        @dg.multi_asset_check(specs=[spec], name=f"{profile.name}__{entity}__{name}", can_subset=True,
                              required_resource_keys={target_key, f"{profile.name}_settings"})
        def run_check(context: dg.AssetCheckExecutionContext):
            needed = [key, late_seed_key] if after_late_seed else [key]
            missing = [a.to_user_string() for a in needed if not materialised_here(context, a)]
            if missing:
                context.log.info(f"{name}: skipped, {', '.join(missing)} not materialised in this run")
                return
            if getattr(context.resources, f"{profile.name}_settings").dry_run and name not in ("reconciliation",
                                                                                              "validation"):
                context.log.info(f"{name}: skipped, a dry run writes nothing to check")
                return
            url = getattr(context.resources, target_key).connection_url()
            result = evaluate(context, url)
            if result is not None:
                yield result

        return run_check

    def natural_key_unique(context, url: str) -> dg.AssetCheckResult:
        from import_pipelines.pipeline.checks import duplicate_natural_keys

        count = duplicate_natural_keys(url, template=template, entity=entity, source_system=system)
        return dg.AssetCheckResult(passed=count == 0, metadata={"duplicate_keys": count})

    def reconciliation(context, url: str) -> dg.AssetCheckResult | None:
        from import_pipelines.pipeline.checks import counted_source_rows, reconcile, reconciliation as reconcile_run

        if getattr(context.resources, f"{profile.name}_settings").dry_run:
            # a dry run predicts one action per source row
            rows = counted_source_rows(url, profile=profile.name, entity=entity, run_id=context.run.run_id)
            counts = reconcile(url, profile=profile.name, entity=entity, run_id=context.run.run_id, dry_run=True)
            return dg.AssetCheckResult(passed=rows is not None and sum(counts.values()) == rows,
                                       metadata={"source_rows": rows if rows is not None else -1,
                                                 "predicted": sum(counts.values()), **counts})
        outcome = reconcile_run(url, profile=profile.name, entity=entity, run_id=context.run.run_id)
        if outcome is None:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "no source count recorded for this run"})
        passed = bool(outcome.pop("passed"))
        return dg.AssetCheckResult(passed=passed, metadata=outcome)

    def references_resolved(context, url: str) -> dg.AssetCheckResult:
        from import_pipelines.pipeline.checks import references_after_late_seed

        found = references_after_late_seed(url, profile=profile.name, entity=entity, run_id=context.run.run_id)
        return dg.AssetCheckResult(passed=found["unresolved"] == 0 and found["still_pending"] == 0
                                   and found["left_empty"] == 0, severity=dg.AssetCheckSeverity.WARN, metadata=found)

    def validation(context, url: str) -> dg.AssetCheckResult | None:
        from import_pipelines.pipeline.checks import validation_results

        results = validation_results(url, profile=profile.name, entity=entity, run_id=context.run.run_id)
        if not results:
            return None  # nothing staged to validate (a sync that found no change)
        failed = sum(r["failed"] for r in results)
        lines = ["| # | expectation | fields | engine | evaluated | failed |", "|---:|---|---|---|---:|---:|"]
        lines += [f"| {r['position']} | {r['expectation']} | {', '.join(r['fields'])} | {r['engine']} |"
                  f" {r['evaluated']:,} | {r['failed']:,} |" for r in results]
        metadata: dict[str, Any] = {"evaluated": results[0]["evaluated"], "failed": failed,
                                    "expectations": dg.MetadataValue.md("\n".join(lines))}
        metadata |= {f"failed[{r['position']}] {r['expectation']}": r["failed"] for r in results}
        return dg.AssetCheckResult(passed=failed == 0, severity=dg.AssetCheckSeverity.WARN, metadata=metadata)

    checks = [
        check("natural_key_unique", "No two target rows share (source_system, external_id).", natural_key_unique,
              blocking=True),
        check("reconciliation", "The rows the source query returned (counted on the source in the extract's"
                                " snapshot) = created + updated + unchanged + skipped + failed recorded by this"
                                " run, in the audit and in the run summary.", reconciliation, blocking=True),
        check("references_resolved", "After the late seed: no reference of this run group left unresolved or"
                                     " pending, no optional reference loaded empty.", references_resolved,
              after_late_seed=True),
    ]
    if template.entities[entity].validate_:
        checks.append(check("validation", "The entity's validate expectations over the staged rows before load:"
                                          " rows evaluated and failed per expectation (failed rows were not loaded).",
                            validation))

    return checks
