"""Natural-key overrides: a YAML file naming the natural key of tables the catalogue cannot.

Format, one entry per table, a list of column names (foreign-key columns are allowed and are
matched through the referenced table's own natural key)::

    audit_notes: [note, created_at]
    project_members: [project_id, user_id]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

NaturalKeyOverrides = dict[str, tuple[str, ...]]

OVERRIDE_FORMAT_HELP = "a YAML file with one line per table: '{table}: [column, ...]'"


class OverrideError(ValueError):
    """The overrides file or mapping is malformed."""


def load_overrides(source: str | Path | Mapping[str, list[str]] | None) -> NaturalKeyOverrides:
    """Read overrides from a YAML file path or accept an already parsed mapping; validate the shape."""
    if source is None:
        return {}
    origin = "overrides"
    if isinstance(source, (str, Path)):
        import yaml

        path = Path(source)
        origin = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OverrideError(f"overrides file {origin} does not exist") from None
        except yaml.YAMLError as exc:
            raise OverrideError(f"overrides file {origin} is not valid YAML: {exc}") from None
    else:
        data = source
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise OverrideError(f"{origin}: expected a mapping of table to column list ({OVERRIDE_FORMAT_HELP})")
    result: NaturalKeyOverrides = {}
    for table, columns in data.items():
        if isinstance(columns, str):
            columns = [columns]
        if (not isinstance(table, str) or not isinstance(columns, list) or not columns
                or not all(isinstance(column, str) and column for column in columns)):
            raise OverrideError(f"{origin}: entry {table!r} must be a non-empty list of column names "
                                f"({OVERRIDE_FORMAT_HELP})")
        if len(set(columns)) != len(columns):
            raise OverrideError(f"{origin}: entry {table!r} names a column twice")
        result[table] = tuple(columns)
    return result
