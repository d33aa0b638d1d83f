"""The ``source_deletions`` asset of a profile whose records entities have a rule for records deleted at the source."""

# no ``from __future__ import annotations``: Dagster inspects the asset's context annotation

from typing import TYPE_CHECKING

import dagster as dg

from import_pipelines.templates.model import SourceDelete, Template

if TYPE_CHECKING:
    from import_pipelines.components.profile import ImportProfile


def deletion_rules(profile: "ImportProfile", template: Template) -> dict[str, SourceDelete]:
    """The effective rule of every records entity (the template's, its action overridden by the profile).

    Raises ValueError for a profile override that names no entity of the template or cannot be
    applied (deactivate without the template naming the column).
    """
    from import_pipelines.pipeline.record_reads import delete_rule

    unknown = [name for name in profile.on_source_delete if name not in template.entities]
    if unknown:
        raise ValueError(f"profile {profile.name}: on_source_delete names {', '.join(map(repr, unknown))}, not"
                         f" entities of template {template.name} ({', '.join(template.entities)})")
    for name in profile.on_source_delete:
        if template.entities[name].records is None:
            raise ValueError(f"profile {profile.name}: on_source_delete {name!r}: a query entity; only records entities"
                             " can tell a record deleted at the source")
    return {name: delete_rule(template, name, override=profile.on_source_delete.get(name))
            for name, entity in template.entities.items() if entity.records is not None}


def source_deletions_assets(profile: "ImportProfile", template: Template) -> list[dg.AssetsDefinition]:
    """``[profile, source_deletions]``, after every entity and the late seed; none when every rule is ``leave``."""
    rules = deletion_rules(profile, template)
    if all(rule.action == "leave" for rule in rules.values()):
        return []
    keys = {f"{profile.name}_target", f"{profile.name}_settings"}
    summary = ", ".join(f"{name}: {rule.action}" for name, rule in rules.items())

    @dg.asset(name="source_deletions", key_prefix=[profile.name], group_name=profile.name, kinds={"postgres", "python"},
              deps=[dg.AssetKey([profile.name, e]) for e in [*template.entities, "late_seed"]],
              required_resource_keys=keys,
              description=f"Target rows whose source record disappeared ({summary}): found from complete reads only,"
                          " applied after every entity has loaded, dependents first, each audited with its"
                          " before-image.")
    def source_deletions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from import_pipelines.pipeline.source_deletes import apply_source_deletions

        if getattr(context.resources, f"{profile.name}_settings").dry_run:
            context.log.info("source_deletions: dry run, nothing deactivated or deleted")
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "dry_run": True})
        outcome = apply_source_deletions(
            getattr(context.resources, f"{profile.name}_target").connection_url(), template=template,
            profile=profile.name, run_id=context.run.run_id, run_group=context.run.root_run_id or context.run.run_id,
            source_system=profile.source_system or template.source_system, rules=rules, log=context.log.info)
        totals = {action: sum(counts[action] for counts in outcome.values())
                  for action in ("deactivated", "deleted", "failed")}
        metadata = {"dagster/row_count": sum(totals.values()), **totals}
        metadata.update({f"{name}_{action}": count for name, counts in outcome.items()
                         for action, count in counts.items()})
        return dg.MaterializeResult(metadata=metadata)

    return [source_deletions]
