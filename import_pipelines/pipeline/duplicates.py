"""What a run does with duplicates: the strategy and the fields that make two records one.

The bulk push API names them per request (``duplicate_strategy``, ``duplicate_match_fields``);
a profile's mode and the template's dedupe rule are the defaults. A strategy is a mode of the
engine: ``skip`` leaves a matched row as it is (``create_only``), ``update`` updates it
(``upsert``), ``create_new`` inserts every record as a new row (no matching at all). The match fields replace the rule's fields
with an any-field rule: two records are one when any listed field agrees after normalising
(emails by case and spaces, phones by their digits with the country code).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from import_pipelines.dedupe.matching import DedupeRule
from import_pipelines.templates.model import Mode, Template

DuplicateStrategy = Literal["skip", "update", "create_new"]
STRATEGY_MODES: dict[str, Mode] = {"skip": "create_only", "update": "upsert", "create_new": "create_new"}


def strategy_mode(strategy: str) -> Mode:
    """The engine's mode for a duplicate strategy; an unknown strategy is an error listing the known ones."""
    try:
        return STRATEGY_MODES[strategy]
    except KeyError:
        raise ValueError(f"duplicate_strategy {strategy!r} is not one of {', '.join(STRATEGY_MODES)}") from None


def match_on(template: Template, entity_name: str, fields: Sequence[str]) -> Template:
    """``template`` with ``entity_name`` matching duplicates on any one of ``fields`` (normalised).

    The entity's rule keeps its strategy and phone country; its compared fields become
    ``fields``, each a ``match_any`` field. Each must be a field the entity writes.
    """
    entity = template.entities[entity_name]
    fields = list(dict.fromkeys(fields))
    if not fields:
        raise ValueError("duplicate_match_fields is empty: name at least one field (email, phone, ...)")
    unknown = [name for name in fields if name not in entity.fields]
    if unknown:
        raise ValueError(f"duplicate_match_fields: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not"
                         f" a field of {entity_name} ({', '.join(entity.fields)})")
    base = entity.dedupe
    rule = DedupeRule.model_validate({
        "strategy": base.strategy if base else "case_insensitive", "primary": fields, "match_any": fields,
        "field_kinds": {name: kind for name, kind in (base.field_kinds if base else {}).items() if name in fields},
        "phone_country": base.phone_country if base else "1", "threshold": 100, "review_threshold": 99.99,
        "on_loaded_match": base.on_loaded_match if base else "update"})
    entities = {**template.entities, entity_name: entity.model_copy(update={"dedupe": rule})}
    return template.model_copy(update={"entities": entities})


def duplicate_options(template: Template, entity_name: str, *, strategy: str | None = None,
                      match_fields: Sequence[str] | None = None) -> tuple[Template, Mode | None]:
    """The template and mode a run of ``entity_name`` uses for a duplicate strategy and match fields.

    Either may be None (the template's rule, the profile's mode). ``create_new`` turns matching
    off: every record becomes a row of its own, whatever it resembles.
    """
    if match_fields:
        template = match_on(template, entity_name, match_fields)
    if strategy is None:
        return template, None
    mode = strategy_mode(strategy)
    if mode == "create_new":
        entity = template.entities[entity_name].model_copy(update={"dedupe": None})
        template = template.model_copy(update={"entities": {**template.entities, entity_name: entity}})
    return template, mode
