"""Airtable cell values as Python values, by the field's type.

The REST API returns JSON and leaves a field out of a record when it is empty, so a reader
needs the table's field types to be faithful: a missing checkbox is ``False`` (Airtable never
sends ``false``), any other missing field is ``None``, a ``date`` is a :class:`datetime.date`, a
``dateTime`` an aware :class:`datetime.datetime` (in the field's own time zone when it names one,
the same instant as the API's UTC), numbers and currency are ``int`` or :class:`~decimal.Decimal`
(never a binary float that would print as 12.300000000000001), attachments are their URLs,
linked records their record ids, multi-selects, lookups and list rollups lists. Computed fields
(formula, rollup, lookup) are mapped by their result type. A computed field in error
(``{"error": "#ERROR!"}``) fails its record with the field's name rather than passing as a value.

The types come from the metadata API (``GET /v0/meta/bases/{base}/tables``) or from the
source's configuration, as :class:`AirtableField`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

from import_pipelines.sources.api_read import parse_timestamp

NUMBER_TYPES = frozenset({"number", "percent", "currency", "duration", "rating", "autoNumber", "count"})
INSTANT_TYPES = frozenset({"dateTime", "createdTime", "lastModifiedTime"})
LIST_TYPES = frozenset({"multipleRecordLinks", "multipleSelects", "multipleCollaborators", "multipleLookupValues"})
COMPUTED_TYPES = frozenset({"formula", "rollup", "multipleLookupValues"})


class AirtableField(BaseModel):
    """One field's type: ``type`` as Airtable names it, the ``result`` type of a computed field, a ``time_zone``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    result: str | None = None  # formula, rollup, lookup: the type of what it computes
    time_zone: str | None = None  # dateTime (or a computed dateTime): an IANA zone, or "utc" / "client"

    @classmethod
    def from_metadata(cls, field: Mapping[str, Any]) -> AirtableField:
        """From one field of the metadata API's table schema."""
        options = field.get("options") or {}
        result = options.get("result") or {}
        zone = options.get("timeZone") or (result.get("options") or {}).get("timeZone")
        return cls(type=field["type"], result=result.get("type"), time_zone=zone)


class CellError(ValueError):
    """A cell that cannot be mapped to its field's type."""


def absent_value(field: AirtableField) -> Any:
    """The value of a field a record leaves out: ``False`` for a checkbox, otherwise ``None``."""
    return False if field.type == "checkbox" else None


Converter = Callable[[Any], Any]


def converter(field: AirtableField) -> Converter | None:
    """The function that maps a present cell of ``field`` (raising :class:`CellError`); None: the value as sent.

    Chosen once per field and read, so mapping a record is one call per typed cell.
    """
    if field.type in COMPUTED_TYPES:
        one = _scalar_converter(field.result, field.time_zone)
        single_as_list = field.type == "multipleLookupValues"

        def computed(value: Any) -> Any:
            if isinstance(value, list):
                return [one(item) for item in value] if one else value
            if one is None:
                return [value] if single_as_list else _no_error(value)
            return [one(value)] if single_as_list else one(value)

        return computed
    if field.type == "multipleAttachments":
        return _attachment_urls
    if field.type in LIST_TYPES:
        return _list_of(field.type)
    return _scalar_converter(field.type, field.time_zone)


def _scalar_converter(kind: str | None, zone: str | None) -> Converter | None:
    if kind in NUMBER_TYPES:
        return _number
    if kind == "checkbox":
        return lambda value: bool(_no_error(value))
    if kind == "date":
        return _date
    if kind in INSTANT_TYPES:
        tz = _zone(zone)
        return (lambda value: _instant(value).astimezone(tz)) if tz else _instant
    if kind == "multipleAttachments":
        return _attachment_url
    return None


def _no_error(value: Any) -> Any:
    if isinstance(value, dict) and "error" in value:
        raise CellError(f"Airtable computed the error {value['error']}")
    return value


def _number(value: Any) -> int | Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        # repr gives the shortest digits that read back as the same float: the digits the JSON carried
        return Decimal(repr(value))
    if isinstance(value, dict) and "specialValue" in value:  # NaN, Infinity of a computed number
        return Decimal(value["specialValue"])
    _no_error(value)
    raise CellError(f"{value!r} is not a number")


def _date(value: Any) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        _no_error(value)
        raise CellError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _instant(value: Any) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError as error:
        _no_error(value)
        raise CellError(str(error)) from None


def _zone(name: str | None) -> ZoneInfo | None:
    """The field's zone; None for UTC, the viewer's zone ("client") or a name this system does not know."""
    if not name or name in ("utc", "client"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # the instant in UTC is still right


def _list_of(kind: str) -> Converter:
    def as_list(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise CellError(f"{kind} should be a list, not {type(value).__name__}")
        return value

    return as_list


def _attachment_urls(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise CellError(f"attachments should be a list, not {type(value).__name__}")
    return [_attachment_url(item) for item in value]


def _attachment_url(item: Any) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        _no_error(item)
        raise CellError(f"attachment {item!r} has no url")
    return item["url"]
