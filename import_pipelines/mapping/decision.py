"""Whether a suggestion is sure enough to load, and what a person runs when it is not.

A suggestion loads when every column's confidence reaches ``column_threshold`` and the overall
confidence reaches ``overall_threshold``. Otherwise nothing is written: the decision lists the
uncertain columns with their candidates and gives the one command that saves the mapping as a
preset (as suggested, with the uncertain columns spelled out to be corrected where wrong), and
the equivalent run config for the field mapper resource. The next run finds the preset and
loads.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from import_pipelines.mapping.model import ColumnSuggestion, Suggestion

COLUMN_THRESHOLD = 0.6
OVERALL_THRESHOLD = 0.7


@dataclass(frozen=True)
class MappingDecision:
    """The verdict on a suggestion, with what to do about it."""

    accepted: bool
    mapping: dict[str, str | None]
    uncertain: list[ColumnSuggestion]
    message: str
    command: str
    run_config: str


def decide(suggestion: Suggestion, *, source: str, template: str, sheet: str | None = None,
           column_threshold: float = COLUMN_THRESHOLD, overall_threshold: float = OVERALL_THRESHOLD,
           resource_key: str = "field_mapper") -> MappingDecision:
    """Accept ``suggestion`` or explain, for ``source`` (the file or sheet as given to the command line), why not."""
    uncertain = [c for c in suggestion.columns if c.confidence < column_threshold]
    low_overall = suggestion.overall_confidence < overall_threshold
    mapping = suggestion.mapping()
    accepted = suggestion.method == "preset" or not (uncertain or low_overall)
    shown = uncertain or sorted(suggestion.columns, key=lambda c: c.confidence)[:5]
    command = " ".join(shlex.quote(part) for part in [
        "python", "-m", "import_pipelines", "mapping", "presets", "save", source, "--template", template,
        *(["--sheet", sheet] if sheet else []), *(f"--set={c.header}={_target(c.field)}" for c in shown)])
    run_config = "\n".join([
        "resources:", f"  {resource_key}:", "    config:", "      overrides:",
        *(f"        {_yaml(c.header)}: {_yaml(c.field or 'skip')}" for c in shown)])
    if accepted:
        return MappingDecision(accepted=True, mapping=mapping, uncertain=[], message="", command=command,
                               run_config=run_config)
    reasons = []
    if low_overall:
        reasons.append(f"overall confidence {suggestion.overall_confidence:.2f} < {overall_threshold:.2f}")
    if uncertain:
        reasons.append(f"{len(uncertain)} column{'s' if len(uncertain) != 1 else ''} under {column_threshold:.2f}")
    width = max((len(repr(c.header)) for c in shown), default=0)
    lines = [f"The field mapping of {source} is not certain enough to load ({'; '.join(reasons)}; "
             f"method {suggestion.method}). Nothing was written.", ""]
    for column in shown:
        candidates = ", ".join(f"{_target(c.field)} {c.confidence:.2f}" for c in column.candidates) or "none"
        lines.append(f"  {column.header!r:<{width}} -> {_target(column.field)} ({column.confidence:.2f}); "
                     f"candidates: {candidates}")
    lines += ["", "To accept, run this (change a --set to the right field, 'custom' or 'null' to correct it):",
              f"  {command}", "", "or launch the run with this run config:", run_config]
    return MappingDecision(accepted=False, mapping=mapping, uncertain=uncertain, message="\n".join(lines),
                           command=command, run_config=run_config)


def _target(field: str | None) -> str:
    return "null" if field is None else field


def _yaml(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)  # a JSON string is valid YAML, whatever the header holds
