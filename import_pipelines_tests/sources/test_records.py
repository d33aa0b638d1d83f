"""The in-memory record source: every item a record, a non-object item a failed record."""

from __future__ import annotations

from import_pipelines.sources import RecordSource
from import_pipelines.sources.records import ListSource


def test_list_source_numbers_items_and_flags_non_objects() -> None:
    source = ListSource(name="push", items=[{"email": "a@x.org"}, ["not", "an", "object"], {"phone": "1"}])
    assert isinstance(source, RecordSource)
    assert source.columns() == ["email", "phone"]
    records = list(source.records())
    assert [r.line for r in records] == [1, 2, 3]
    assert records[0].values == {"email": "a@x.org"} and records[0].error is None
    assert records[1].error == "item 2 is a list, not an object"
    assert records[2].location == "push item 3"
