"""JSON documents and JSON Lines: shapes, nesting, wrong shapes with their numbers, streaming."""

from __future__ import annotations

import json
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

from import_pipelines.sources import RecordSource, SourceError
from import_pipelines.sources.json_file import JsonSource


def _write(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_nested_values_stay_dicts_and_lists(tmp_path: Path) -> None:
    path = _write(tmp_path, "people.json", [
        {"email": "a@example.com", "score": 1.5, "address": {"city": "Paris", "lines": ["1 rue X"]}, "tags": ["vip"]},
        {"email": "b@example.com", "phones": [{"type": "work", "number": "+33 1"}]}])
    source = JsonSource(path)
    assert isinstance(source, RecordSource)
    first, second = source.records()
    assert first.values == {"email": "a@example.com", "score": Decimal("1.5"),
                            "address": {"city": "Paris", "lines": ["1 rue X"]}, "tags": ["vip"]}
    assert second.values["phones"][0]["number"] == "+33 1"
    assert (first.location, second.line) == ("people.json record 1", 2)
    assert source.columns() == ["email", "score", "address", "tags", "phones"]


@pytest.mark.parametrize(("document", "path"), [
    ({"total": 2, "contacts": [{"email": "a"}, {"email": "b"}], "meta": {"page": 1}}, "contacts"),
    ({"data": {"items": [{"email": "a"}, {"email": "b"}]}, "links": []}, "data.items"),
    ({"items": [{"email": "a"}, {"email": "b"}]}, "items"),
])
def test_the_records_array_of_an_object_is_found(tmp_path: Path, document, path: str) -> None:
    source = JsonSource(_write(tmp_path, "doc.json", document))
    assert (source.shape, source.records_path) == ("object", path)
    assert [record.values["email"] for record in source.records()] == ["a", "b"]


def test_several_arrays_need_records_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.json", {"contacts": [{"email": "a"}], "companies": [{"name": "Acme"}]})
    with pytest.raises(SourceError, match=r"two.json: several arrays of objects \(contacts, companies\)"):
        JsonSource(path)
    assert [r.values for r in JsonSource(path, records_path="companies").records()] == [{"name": "Acme"}]
    with pytest.raises(SourceError, match="holds no array of objects"):
        JsonSource(_write(tmp_path, "one.json", {"email": "a@example.com"}))


@pytest.mark.parametrize(("content", "message"), [
    ("42", "must be an array or an object, not a number"),
    ('"text"', "not a string"),
    ("[[1, 2], [3, 4]]", "record 1 of the array is an array, not an object"),
    ("", "the file is empty"),
])
def test_wrong_shapes_are_source_errors(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        list(JsonSource(_write(tmp_path, "bad.json", content)).records())


def test_mixed_items_are_error_records_with_their_numbers(tmp_path: Path) -> None:
    records = list(JsonSource(_write(tmp_path, "mixed.json", '[{"a": 1}, 2, "x", null, {"a": 3}]')).records())
    assert [(r.line, r.error) for r in records] == [
        (1, None), (2, "record 2 is a number, not an object"), (3, "record 3 is a string, not an object"),
        (4, "record 4 is null, not an object"), (5, None)]


def test_invalid_json_in_a_document_names_the_last_good_record(tmp_path: Path) -> None:
    source = JsonSource(_write(tmp_path, "cut.json", '[{"a": 1}, {"a": 2}, {"a": tru'))
    with pytest.raises(SourceError, match="cut.json: invalid JSON after record 2"):
        list(source.records())


def test_json_lines_report_bad_lines_and_go_on(tmp_path: Path) -> None:
    path = _write(tmp_path, "events.jsonl", '{"email": "a"}\n\n{"email": bad}\n[1]\n{"email": "c"}\n')
    records = list(JsonSource(path).records())
    assert [(r.line, r.values.get("email"), r.error and r.error.split(":")[0]) for r in records] == [
        (1, "a", None), (3, None, "invalid JSON"), (4, None, "line 4 is an array, not an object"), (5, "c", None)]
    assert records[1].values == {"_raw": '{"email": bad}'}
    # Content says JSON Lines even without the extension.
    assert JsonSource(_write(tmp_path, "events.json", '{"email": "a"}\n{"email": "b"}\n')).shape == "lines"


def test_utf16_and_bom_documents(tmp_path: Path) -> None:
    path = tmp_path / "utf16.json"
    path.write_text(json.dumps({"contacts": [{"name": "Zoë"}]}), encoding="utf-16")
    assert [r.values for r in JsonSource(path).records()] == [{"name": "Zoë"}]
    bom = tmp_path / "bom.json"
    bom.write_text(json.dumps([{"name": "Zoë"}]), encoding="utf-8-sig")
    assert [r.values for r in JsonSource(bom).records()] == [{"name": "Zoë"}]


def test_a_large_document_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"exported": "2024-03-01", "contacts": [')
        for number in range(100_000):
            handle.write(("," if number else "") + json.dumps(
                {"id": number, "email": f"user{number}@example.com", "name": "Ann Lee", "tags": ["a", "b"],
                 "address": {"city": "Paris", "zip": "75002"}}))
        handle.write("]}")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for record in JsonSource(path).records() if record.error is None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 4 * 1024 * 1024 < size / 3, (peak, size)  # the 1 MiB detection sample and a few records
