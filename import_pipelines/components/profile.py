"""The import profile component: one use of a template, declared in a ``defs.yaml``.

```yaml
type: import_pipelines.components.ImportProfile
attributes:
  name: freescout_demo
  template: freescout
  source_url_env: IMPORT_PIPELINES_SOURCE_URL
  target_url_env: IMPORT_PIPELINES_TARGET_URL
  mode: upsert
  schedule: "0 * * * *"
  notify:                                # optional: signed messages when a run ends
    - url_env: CRM_WEBHOOK_URL
      secret_env: CRM_WEBHOOK_SECRET
      events: [succeeded, failed]
```

For every template entity it builds a graph-backed asset ``[profile, entity]`` whose ops are
the steps of the data flow (extract, map, dedupe, load), so the run view shows each step's logs
and timing; entities that reference others depend on them. Plus a ``late_seed`` asset, asset
checks, one job, with a cron a schedule, and with ``notify`` the sensors that send its run ends.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.settings import SOURCE_URL_ENV, TARGET_URL_ENV
from import_pipelines.templates.model import Mode, SourceDeleteAction
from import_pipelines.webhooks import WebhookEndpoint

# the files a watched folder's sensor imports by default: every kind the file source reads
WATCHED_FILES = ("*.csv", "*.tsv", "*.txt", "*.xlsx", "*.xls", "*.ods", "*.json", "*.jsonl", "*.ndjson")


class ImportProfile(dg.Component, dg.Model, dg.Resolvable):
    """One import: a template, its source and target connections, a mode and a schedule."""

    name: str = Field(description="profile name; the asset key prefix and the job name's stem")
    template: str = Field(description="a shipped template name (freescout, custom) or a path to a YAML file")
    source_system: str | None = Field(default=None, description="overrides the template's source_system value")
    source_url_env: str = Field(default=SOURCE_URL_ENV, description="environment variable holding the source URL")
    target_url_env: str = Field(default=TARGET_URL_ENV, description="environment variable holding the target URL")
    mode: Mode | None = Field(default=None, description="overrides the template's mode for every entity")
    entity_modes: dict[str, Mode] = Field(default_factory=dict, description="per-entity mode overrides")
    schedule: str | None = Field(default=None, description="cron expression for recurring syncs")
    batch_rows: int | None = Field(default=None, description="rows per merge transaction")
    workers: int = Field(default=2, description="target sessions merging batches side by side")
    retention_days: int = Field(default=90, gt=0, description="days the per-record audit is kept (summaries: for"
                                                              " ever); the control_retention job applies it")
    source: dict[str, Any] | None = Field(default=None, description=(
        "the record source of a template whose entities read records: {kind: file|sheet|push|airtable|http, ...};"
        " secrets only by the name of the environment variable holding them (token_env, credentials_env)"))
    watch_folder: str | None = Field(default=None, description=(
        "a file profile: a folder whose new files each start a run (relative: under the data folder)"))
    watch_patterns: list[str] = Field(default_factory=lambda: list(WATCHED_FILES), description=(
        "the file names the folder sensor imports (fnmatch patterns, any case)"))
    watch_sheet: bool = Field(default=False, description="a sheet profile: run when the sheet's modification time"
                                                         " changes")
    sensor_interval_s: int = Field(default=30, gt=0, description="seconds between sensor ticks")
    settle_s: float = Field(default=10.0, ge=0, description=(
        "a file modified this recently waits until two ticks see the same size and modification time"))
    on_source_delete: dict[str, SourceDeleteAction] = Field(default_factory=dict, description=(
        "per records entity: leave, deactivate or delete the target rows whose source record disappeared"
        " (overrides the template's on_source_delete; found only from a complete read)"))

    notify: list[WebhookEndpoint] = Field(default_factory=list, description=(
        "endpoints told when a run ends, by a message signed per Standard Webhooks: [{url or url_env, secret_env,"
        " events: [succeeded, failed, canceled]}]"))

    @model_validator(mode="after")
    def _watch_fits_source(self) -> ImportProfile:
        kind = (self.source or {}).get("kind")
        if self.watch_folder and kind != "file":
            raise ValueError(f"watch_folder needs a file source (source: {{kind: file}}), not {kind or 'none'}")
        if self.watch_sheet and kind != "sheet":
            raise ValueError(f"watch_sheet needs a sheet source (source: {{kind: sheet, spreadsheet: ...}}),"
                             f" not {kind or 'none'}")
        return self

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """Load and validate the template, then build assets, checks, job and schedule."""
        from import_pipelines.components.build import build_profile_defs
        from import_pipelines.templates.loader import load_template, template_path

        path = template_path(self.template)
        if not path.is_absolute() and not path.exists():
            path = context.path / path
        template = load_template(path)
        resources: dict[str, Any] = {f"{self.name}_target": PostgresDatabase(url=dg.EnvVar(self.target_url_env)),
                                     f"{self.name}_settings": ImportRunSettings()}
        if any(entity.query is not None for entity in template.entities.values()):
            resources[f"{self.name}_source"] = PostgresDatabase(url=dg.EnvVar(self.source_url_env))
        if any(entity.records is not None for entity in template.entities.values()):
            from import_pipelines.mapping.resource import FieldMapper

            resources[f"{self.name}_field_mapper"] = FieldMapper()
        if (self.source or {}).get("kind") == "push":
            from import_pipelines.push import BulkPush

            resources[f"{self.name}_push"] = BulkPush()
        return build_profile_defs(self, template, template_source=str(path), resources=resources)
