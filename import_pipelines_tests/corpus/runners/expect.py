"""Checks shared by the corpus runners."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from import_pipelines.templates.loader import TemplateError

BASE_TEMPLATE: dict[str, Any] = {
    "name": "corpus", "source_system": "corpus", "entities": {"x": {
        "target": "accounts", "source_id": "external_id",
        "query": {"base": {"table": "people", "alias": "p"}},
        "fields": {"external_id": "p.id", "name": "p.name"}}}}


def template_data(spec: dict[str, Any]) -> dict[str, Any]:
    """A case's template: ``template`` as given, else the base one with ``entity``/``fields``/``query`` merged in."""
    if "template" in spec:
        return copy.deepcopy(spec["template"])
    data = copy.deepcopy(BASE_TEMPLATE)
    entity = data["entities"]["x"]
    entity.update(copy.deepcopy(spec.get("entity", {})))
    entity["fields"].update(copy.deepcopy(spec.get("fields", {})))
    entity["query"].update(copy.deepcopy(spec.get("query", {})))
    data.update(copy.deepcopy(spec.get("top", {})))
    return data


def template_text(spec: dict[str, Any]) -> str:
    """The YAML text of a case's template (``yaml`` verbatim, for what only text can say: duplicate keys)."""
    return spec["yaml"] if "yaml" in spec else yaml.safe_dump(template_data(spec), sort_keys=False)


def assert_template_error(error: TemplateError, expected: dict[str, Any], *, source: str) -> None:
    """``error`` has a problem at exactly ``expected['path']`` whose rule contains ``expected['rule']``."""
    assert error.source == source, (error.source, source)
    paths = [path for path, _ in error.problems]
    assert expected["path"] in paths, f"expected a problem at {expected['path']!r}, got {error.problems}"
    rules = [rule for path, rule in error.problems if path == expected["path"]]
    assert any(expected["rule"] in rule for rule in rules), f"{expected['rule']!r} not in {rules}"
    assert f"{source}: {expected['path']}: " in str(error)
