"""The bulk push as a Dagster resource: the body of ``POST /imports/bulk`` in run config."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from import_pipelines.templates.model import Mode, Template

BODY_KEYS = ("contacts", "duplicate_strategy", "duplicate_match_fields", "external_id")


class BulkPush(dg.ConfigurableResource):
    """The records of one push and what to do with duplicates (the body of ``POST /imports/bulk``).

    Launch the profile's job with ``resources: {<profile>_push: {config: <body>}}``. ``contacts``
    are objects whose keys the field mapping maps (the template's field names map to themselves);
    ``duplicate_strategy`` is ``skip`` (leave a matched row), ``update`` (update it) or
    ``create_new`` (insert every record, no matching), default the profile's mode;
    ``duplicate_match_fields`` the fields any one of which makes two records one (default the
    template's rule: email and phone); ``external_id`` names the batch in every audit record
    (``push <external_id> record 3``) and in the run's tags.
    """

    # list[Any], not list[dict]: Dagster's config maps refuse null values, and a record may hold
    # nulls; an item that is not an object fails as a row error naming its position
    contacts: list[Any] = Field(default_factory=list, description="the records pushed (JSON objects)")
    duplicate_strategy: str | None = Field(default=None, description="skip, update or create_new")
    duplicate_match_fields: list[str] | None = Field(default=None, description="e.g. [email, phone]")
    external_id: str | None = Field(default=None, description="the pushing system's id for this batch")

    def record_source(self, *, run_id: str) -> dict[str, Any]:
        """The record source of this push: its records, named after the batch (or the run)."""
        return {"kind": "push", "records": list(self.contacts), "name": f"push {self.external_id or run_id[:8]}"}


    def run_options(self, template: Template, entity: str, *, run_id: str) -> tuple[dict[str, Any], Template, Mode | None]:
        """The record source, the template (its duplicate rule on the match fields) and the mode for ``entity``."""
        from import_pipelines.pipeline.duplicates import duplicate_options

        template, mode = duplicate_options(template, entity, strategy=self.duplicate_strategy,
                                           match_fields=self.duplicate_match_fields)
        return self.record_source(run_id=run_id), template, mode


def push_run_config(profile: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The run config that launches ``profile``'s job with ``body``; a body of the wrong shape is an error."""
    if not isinstance(body, Mapping):
        raise ValueError(f"a push is a JSON object with {', '.join(BODY_KEYS)}, not a {type(body).__name__}")
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in the push"
                         f" (keys: {', '.join(BODY_KEYS)})")
    records = body.get("contacts")
    if not isinstance(records, list) or not records:
        raise ValueError("the push holds no records: \"contacts\" must be a non-empty list of objects")
    strategy = body.get("duplicate_strategy")
    if strategy is not None:
        from import_pipelines.pipeline.duplicates import strategy_mode

        strategy_mode(strategy)
    fields = body.get("duplicate_match_fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise ValueError("duplicate_match_fields must be a list of field names, e.g. [\"email\", \"phone\"]")
    config = {key: body[key] for key in BODY_KEYS if body.get(key) is not None}
    if "external_id" in config:
        config["external_id"] = str(config["external_id"])
    return {"resources": {f"{profile}_push": {"config": config}}}


def read_body(path: str | Path) -> dict[str, Any]:
    """The push body in the JSON file at ``path``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except ValueError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None
