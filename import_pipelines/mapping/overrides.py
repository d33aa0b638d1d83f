"""A person's corrections to a suggestion: ``HEADER=FIELD`` pairs, checked and applied.

The same rules hold wherever a mapping is written by hand (``--set`` on the command line, the
field mapper's ``overrides`` run config, a saved preset): a target is a field of the template,
``custom``, or one of ``null`` / ``none`` / ``skip`` / the empty string for "do not import", and
no field is given to two columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from import_pipelines.mapping.model import CUSTOM, Candidate, ColumnSuggestion, Suggestion, TargetField, overall_confidence

NOT_IMPORTED = frozenset({"", "null", "none", "skip", "-"})


class MappingError(ValueError):
    """A hand-written mapping that cannot be used; the message names the header and the field."""


def parse_target(text: str | None, fields: Sequence[TargetField], *, header: str) -> str | None:
    """The target a person wrote for ``header``: a field name, ``"custom"`` or None for "do not import"."""
    if text is None or text.strip().casefold() in NOT_IMPORTED:
        return None
    value = text.strip()
    names = [f.name for f in fields]
    if value != CUSTOM and value not in names:
        raise MappingError(f"column {header!r}: {value!r} is not a target field; use one of {', '.join(names)}, "
                           f"'custom' or 'null'")
    return value


def parse_assignments(items: Iterable[str], fields: Sequence[TargetField]) -> dict[str, str | None]:
    """``["Tel=phone", "Col 7=custom", "Row=null"]`` -> ``{"Tel": "phone", ...}`` (split at the last ``=``)."""
    result: dict[str, str | None] = {}
    for item in items:
        header, sep, target = item.rpartition("=")
        if not sep or not header:
            raise MappingError(f"{item!r} is not HEADER=FIELD")
        result[header] = parse_target(target, fields, header=header)
    return result


def check_mapping(pairs: Sequence[tuple[str, str | None]], fields: Sequence[TargetField]) -> None:
    """Refuse unknown targets and a field given to two columns."""
    names = {f.name for f in fields}
    seen: dict[str, str] = {}
    for header, target in pairs:
        if target is not None and target != CUSTOM and target not in names:
            raise MappingError(f"column {header!r}: {target!r} is not a target field, 'custom' or null")
        if target in names:
            if target in seen:
                raise MappingError(f"field {target!r} is given to two columns: {seen[target]!r} and {header!r}")
            seen[target] = header


def apply_overrides(suggestion: Suggestion, overrides: Mapping[str, str | None],
                    fields: Sequence[TargetField]) -> Suggestion:
    """``suggestion`` with the columns named in ``overrides`` set by hand (confidence 1).

    A field set by hand is taken away from the column the suggestion had given it to, which then
    becomes a custom field with that field among its candidates. A header that is not a column is
    an error, so a typo cannot pass unnoticed.
    """
    headers = {c.header for c in suggestion.columns}
    unknown = [h for h in overrides if h not in headers]
    if unknown:
        raise MappingError(f"no column {unknown[0]!r} in this source; its columns are: {', '.join(sorted(headers))}")
    chosen = {h: t for h, t in overrides.items()}
    taken = {t for t in chosen.values() if t not in (None, CUSTOM)}
    columns: list[ColumnSuggestion] = []
    for column in suggestion.columns:
        if column.header in chosen:
            target = chosen[column.header]
            candidates = [c for c in column.candidates if c.field != target]
            if column.field != target:
                candidates.insert(0, Candidate(field=column.field, confidence=column.confidence))
            columns.append(ColumnSuggestion(header=column.header, field=target, confidence=1.0, candidates=candidates[:3]))
        elif column.field in taken:
            columns.append(ColumnSuggestion(header=column.header, field=CUSTOM, confidence=column.confidence,
                                            candidates=[Candidate(field=column.field, confidence=column.confidence),
                                                        *column.candidates][:3]))
        else:
            columns.append(column)
    check_mapping([(c.header, c.field) for c in columns], fields)
    return Suggestion(columns=columns, overall_confidence=overall_confidence(columns), method=suggestion.method,
                      fallback_reason=suggestion.fallback_reason)
