"""The suggestion and the mapping used, as a markdown table for Dagster metadata."""

from __future__ import annotations

from collections.abc import Mapping

from import_pipelines.mapping.model import Suggestion


def mapping_markdown(suggestion: Suggestion, *, used: Mapping[str, str | None] | None = None) -> str:
    """A table a person reads at a glance: header | field | confidence | method | candidates.

    ``used`` is the mapping the run applied when it differs from the suggestion (a person's
    overrides); such a column shows the field used and what was suggested.
    """
    lines = [f"Overall confidence **{suggestion.overall_confidence:.2f}**, method **{suggestion.method}**"
             + (f" (AI not used: {_cell(suggestion.fallback_reason)})" if suggestion.fallback_reason else ""), "",
             "| header | field | confidence | method | candidates |", "|---|---|---:|---|---|"]
    for column in suggestion.columns:
        field = _name(column.field)
        if used is not None and column.header in used and used[column.header] != column.field:
            field = f"**{_name(used[column.header])}** (suggested {field})"
        candidates = ", ".join(f"{_name(c.field)} {c.confidence:.2f}" for c in column.candidates) or "–"
        lines.append(f"| {_cell(column.header)} | {_cell(field)} | {column.confidence:.2f} | {suggestion.method} | "
                     f"{_cell(candidates)} |")
    return "\n".join(lines)


def _name(field: str | None) -> str:
    return "*not imported*" if field is None else field


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
