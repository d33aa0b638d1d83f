"""Remembered mappings: an accepted mapping saved in ``import_control.mapping_presets`` and reused.

A preset is keyed by its template and the *fingerprint* of the source's headers: the sha256 of
the normalised headers, sorted, so the same export with its columns in another order, other
capitals or other punctuation ("E-Mail" / "email") finds the same preset. Applied to a source,
a preset maps each column by its normalised header (the n-th repeat of a header by the n-th
saved one) and the suggestion says ``method: "preset"``, every column at confidence 1.

Presets have unique names (default: the template and the start of the fingerprint) so people
can list, show, rename, edit and delete them; :mod:`import_pipelines.mapping.cli` is the
command line over these functions. Each function ensures the control schema first and writes
in its own transaction block (a savepoint when the caller already holds a transaction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from import_pipelines.control import CONTROL_SCHEMA, ensure_control_schema
from import_pipelines.db.sql import ident
from import_pipelines.mapping.model import ColumnSuggestion, Suggestion, TargetField
from import_pipelines.mapping.normalize import normalize_header
from import_pipelines.mapping.overrides import MappingError, check_mapping

TABLE = ident(CONTROL_SCHEMA, "mapping_presets")
_COLUMNS = sql.SQL("preset_id, name, template, fingerprint, headers, mapping, created_at, updated_at")


class PresetNotFound(LookupError):
    """No preset has that id or name."""


@dataclass(frozen=True)
class Preset:
    """A saved mapping."""

    preset_id: int
    name: str
    template: str
    fingerprint: str
    headers: list[str]
    mapping: list[tuple[str, str | None]]   # (header, field / "custom" / None) in source order
    created_at: dt.datetime
    updated_at: dt.datetime

    def as_dict(self) -> dict:
        """A JSON-ready view for the command line."""
        return {"id": self.preset_id, "name": self.name, "template": self.template, "fingerprint": self.fingerprint,
                "mapping": [{"header": h, "field": f} for h, f in self.mapping],
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


def fingerprint(headers: Sequence[str]) -> str:
    """The sha256 (hex) of the normalised headers, sorted and joined by newlines."""
    return hashlib.sha256("\n".join(sorted(normalize_header(h) for h in headers)).encode("utf-8")).hexdigest()


def find_preset(conn: psycopg.Connection, *, template: str, headers: Sequence[str]) -> Preset | None:
    """The preset of ``template`` saved for these headers, or None."""
    ensure_control_schema(conn)
    row = conn.execute(sql.SQL("SELECT {} FROM {} WHERE template = %s AND fingerprint = %s").format(_COLUMNS, TABLE),
                       (template, fingerprint(headers))).fetchone()
    return _preset(row) if row else None


def save_preset(conn: psycopg.Connection, *, template: str, mapping: Sequence[tuple[str, str | None]],
                fields: Sequence[TargetField], name: str | None = None) -> Preset:
    """Save ``mapping`` (every column of the source, in order) for ``template``; replace the one of the same headers.

    Saving over an existing preset keeps its name unless ``name`` is given, and its creation time.
    """
    check_mapping(mapping, fields)
    headers = [h for h, _ in mapping]
    print_ = fingerprint(headers)
    rename = name is not None
    name = name or f"{template}-{print_[:8]}"
    document = [{"header": h, "normalized": normalize_header(h), "field": f} for h, f in mapping]
    ensure_control_schema(conn)
    with conn.transaction():
        clash = conn.execute(sql.SQL("SELECT template, fingerprint FROM {} WHERE name = %s").format(TABLE), (name,)).fetchone()
        if clash and clash != (template, print_):
            raise MappingError(f"a preset named {name!r} already exists for other headers; choose another name")
        row = conn.execute(sql.SQL(
            "INSERT INTO {table} (name, template, fingerprint, headers, mapping) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (template, fingerprint) DO UPDATE SET mapping = EXCLUDED.mapping, headers = EXCLUDED.headers, "
            "name = CASE WHEN %s THEN EXCLUDED.name ELSE {table}.name END, updated_at = now() RETURNING {columns}"
        ).format(table=TABLE, columns=_COLUMNS), (name, template, print_, Jsonb(headers), Jsonb(document),
                                                  rename)).fetchone()
    return _preset(row)


def list_presets(conn: psycopg.Connection, *, template: str | None = None) -> list[Preset]:
    """Every preset (of ``template``), by name."""
    ensure_control_schema(conn)
    query = sql.SQL("SELECT {} FROM {} WHERE %s::text IS NULL OR template = %s ORDER BY name").format(_COLUMNS, TABLE)
    return [_preset(row) for row in conn.execute(query, (template, template))]


def get_preset(conn: psycopg.Connection, key: str | int) -> Preset:
    """The preset with id or name ``key``; :class:`PresetNotFound` names what was looked for."""
    ensure_control_schema(conn)
    text = str(key)
    row = conn.execute(sql.SQL("SELECT {} FROM {} WHERE name = %s OR (%s AND preset_id = %s) "
                               "ORDER BY name = %s DESC LIMIT 1").format(_COLUMNS, TABLE),
                       (text, text.isdigit(), int(text) if text.isdigit() else 0, text)).fetchone()
    if row is None:
        raise PresetNotFound(f"no mapping preset with id or name {text!r}")
    return _preset(row)


def rename_preset(conn: psycopg.Connection, key: str | int, new_name: str) -> Preset:
    """Give preset ``key`` the name ``new_name`` (unique)."""
    preset = get_preset(conn, key)
    if not new_name.strip():
        raise MappingError("a preset name cannot be empty")
    with conn.transaction():
        taken = conn.execute(sql.SQL("SELECT preset_id FROM {} WHERE name = %s").format(TABLE), (new_name,)).fetchone()
        if taken and taken[0] != preset.preset_id:
            raise MappingError(f"a preset named {new_name!r} already exists")
        row = conn.execute(sql.SQL("UPDATE {} SET name = %s, updated_at = now() WHERE preset_id = %s RETURNING {}")
                           .format(TABLE, _COLUMNS), (new_name, preset.preset_id)).fetchone()
    return _preset(row)


def update_preset(conn: psycopg.Connection, key: str | int, changes: Mapping[str, str | None],
                  fields: Sequence[TargetField]) -> Preset:
    """Edit preset ``key``: set the columns named in ``changes`` to their new targets."""
    preset = get_preset(conn, key)
    headers = {h for h, _ in preset.mapping}
    unknown = [h for h in changes if h not in headers]
    if unknown:
        raise MappingError(f"preset {preset.name!r} has no column {unknown[0]!r}; its columns are: "
                           f"{', '.join(h for h, _ in preset.mapping)}")
    mapping = [(h, changes[h] if h in changes else f) for h, f in preset.mapping]
    return save_preset(conn, template=preset.template, mapping=mapping, fields=fields, name=preset.name)


def delete_preset(conn: psycopg.Connection, key: str | int) -> Preset:
    """Delete preset ``key``; return what was deleted."""
    preset = get_preset(conn, key)
    with conn.transaction():
        conn.execute(sql.SQL("DELETE FROM {} WHERE preset_id = %s").format(TABLE), (preset.preset_id,))
    return preset


def apply_preset(preset: Preset, headers: Sequence[str]) -> Suggestion:
    """The suggestion a preset makes for ``headers`` (which must have its fingerprint)."""
    if fingerprint(headers) != preset.fingerprint:
        raise MappingError(f"preset {preset.name!r} was saved for other headers")
    saved: dict[str, list[str | None]] = {}
    for header, target in preset.mapping:
        saved.setdefault(normalize_header(header), []).append(target)
    seen: Counter[str] = Counter()
    columns: list[ColumnSuggestion] = []
    for header in headers:
        key = normalize_header(header)
        target = saved[key][seen[key]]
        seen[key] += 1
        columns.append(ColumnSuggestion(header=header, field=target, confidence=1.0, candidates=[]))
    return Suggestion(columns=columns, overall_confidence=1.0, method="preset")


def _preset(row: tuple) -> Preset:
    preset_id, name, template, print_, headers, document, created, updated = row
    return Preset(preset_id=preset_id, name=name, template=template, fingerprint=print_, headers=list(headers),
                  mapping=[(item["header"], item["field"]) for item in document], created_at=created, updated_at=updated)
