"""The Airtable source: the real pyairtable client against the local fake Airtable.

Every test keeps the reader's default limit of 5 requests per second per base; the ``running``
fixture checks, at the fake, that no second held more than 5 requests of a base.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from import_pipelines.control import ensure_control_schema
from import_pipelines.control.cursors import advance_cursor, read_cursor
from import_pipelines.db import connect
from import_pipelines.demo.airtable_server import (CASES_EPOCH, CASES_TABLE_ID, DEMO_BASE, FakeAirtable, FakeRecord,
                                                   FakeTable, case_id, cases_table)
from import_pipelines.demo.fake_http import Answer, Request
from import_pipelines.sources import RecordSource, SourceError
from import_pipelines.sources.airtable import (CREATED_TIME_FIELD, RECORD_ID_FIELD, AirtableConfig, AirtableSource,
                                               combined_formula)
from import_pipelines.sources.http_session import RetryPolicy

TOKEN = "patT3stT0ken.0123456789abcdef"
TOKEN_ENV = "IMPORT_PIPELINES_TEST_AIRTABLE_TOKEN"
QUICK_RETRIES = RetryPolicy(rate_limit_penalty_s=0.2, backoff_s=0.05, backoff_max_s=1.0, jitter_s=0.05)


@pytest.fixture(autouse=True)
def airtable_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture
def serve(running) -> Callable[..., FakeAirtable]:
    """Factory: ``serve(records, **misbehaviour)`` starts a fake with a Cases table of that size."""
    return lambda records, **options: running(FakeAirtable({DEMO_BASE: [cases_table(records)]}, token=TOKEN,
                                                           **options))


def config(fake: FakeAirtable, **overrides) -> AirtableConfig:
    settings = {"base": DEMO_BASE, "table": "Cases", "token_env": TOKEN_ENV, "endpoint_url": fake.url,
                "modified_field": "Last Modified", "retry": QUICK_RETRIES, **overrides}
    return AirtableConfig(**settings)


def assert_polite(fake: FakeAirtable) -> None:
    assert fake.max_requests_in_window(DEMO_BASE) <= 5


def test_25000_records_over_250_pages_survive_429s_and_a_dropped_connection(serve) -> None:
    fake = serve(25_000, rate_limit_every=20, drop_at=130)
    logged: list[str] = []
    source = AirtableSource(config(fake), log=logged.append)
    assert isinstance(source, RecordSource)

    ids = Counter(record.record_id for record in source.records())

    assert len(ids) == 25_000 and set(ids.values()) == {1}  # none lost, none duplicated
    assert set(ids) == {case_id(n) for n in range(1, 25_001)}
    # every record left the fake exactly once: a failed page was asked again, page 1 never was
    assert fake.served_ids == ids
    report = source.report
    assert report.pages == 250 and report.records == 25_000 and report.failed == 0 and report.complete
    assert fake.dropped == 1 and report.stats.retried_errors == 1
    assert fake.rate_limited >= 13 and report.stats.rate_limited == fake.rate_limited
    # the metadata request, 250 pages, and one repeat per 429 and per drop
    assert report.stats.requests == fake.requests == 1 + 250 + fake.rate_limited + 1
    assert report.max_modified == CASES_EPOCH + timedelta(minutes=25_000, seconds=30)
    summary = logged[-1]
    assert f"waited {fake.rate_limited} times after HTTP 429" in summary and "retried 1 failures" in summary
    assert sum("rate limited (HTTP 429)" in line for line in logged) == fake.rate_limited
    assert_polite(fake)


def test_a_connection_dropped_in_the_middle_of_a_body_retries_that_page(serve) -> None:
    fake = serve(350, drop_at=3, drop_mode="mid_body")
    source = AirtableSource(config(fake))
    ids = Counter(record.record_id for record in source.records())
    assert len(ids) == 350 and set(ids.values()) == {1} and fake.served_ids == ids
    assert source.report.stats.retried_errors == 1


def test_field_types_map_faithfully(serve) -> None:
    fake = serve(30)
    records = {record.record_id: record for record in AirtableSource(config(fake)).records()}
    assert all(record.error is None for record in records.values())

    third, fifth = records[case_id(3)], records[case_id(5)]
    stored = fake.table(DEMO_BASE, "Cases").records
    assert third.location == f"airtable {DEMO_BASE}/Cases {case_id(3)}"
    values = fifth.values
    assert values[RECORD_ID_FIELD] == case_id(5)
    assert values[CREATED_TIME_FIELD] == CASES_EPOCH + timedelta(minutes=5)
    # linked records: their ids; a lookup: a list
    assert values["Offender"] == ["recOff00000000005"] and values["Offender Name"] == ["Offender 5"]
    # attachments: their URLs
    assert values["Documents"] == ["https://dl.airtable.test/cases/5/notice.pdf"]
    # checkboxes: true when sent, false when left out
    assert third.values["Paid"] is True and values["Paid"] is False
    # dates: a date; a date-time: the same instant, in the field's time zone
    assert values["Opened"] == date.fromisoformat(stored[case_id(5)].fields["Opened"])
    for record in records.values():
        sent = stored[record.record_id].fields
        hearing = record.values["Hearing"]
        if "Hearing" in sent:
            assert hearing == datetime.fromisoformat(sent["Hearing"]) and hearing.tzinfo == ZoneInfo("Europe/London")
        else:
            assert hearing is None
        # currency and numbers: exact decimals and integers, never binary floats
        if "Fine" in sent:
            assert record.values["Fine"] == Decimal(str(sent["Fine"]))
            assert isinstance(record.values["Fine"], Decimal)
        assert isinstance(record.values["Penalty Points"], int) and not isinstance(record.values["Penalty Points"], bool)
        # multi-selects: lists; left out when empty: None
        assert record.values["Tags"] == sent.get("Tags")
        # rich text: the markdown as sent; a rollup of currency: a decimal; a count: an int
        assert record.values["Notes"] == sent.get("Notes")
        assert record.values["Total Fines"] == (Decimal(str(sent["Total Fines"])) if "Total Fines" in sent else None)
        assert record.values["Notice Count"] == sent["Notice Count"]
        assert record.values["Last Modified"] == datetime.fromisoformat(sent["Last Modified"])
    assert {type(r.values["Tags"]) for r in records.values()} == {list, type(None)}


def test_configured_field_types_need_no_metadata_request_and_restrict_the_fields(serve) -> None:
    fake = serve(120)
    source = AirtableSource(config(fake, fields=["Regulator ID", "Paid", "Fine", "Hearing"], sort=["-Regulator ID"],
                                   field_types={"Regulator ID": "singleLineText", "Paid": "checkbox",
                                                "Fine": {"type": "currency"}, "Last Modified": "lastModifiedTime",
                                                "Hearing": {"type": "dateTime", "time_zone": "client"}}))
    records = list(source.records())
    assert fake.requests == 2  # two pages, no metadata request
    assert [r.record_id for r in records[:2]] == [case_id(120), case_id(119)]  # the sort reached the server
    assert set(records[0].values) == {"Regulator ID", "Paid", "Fine", "Hearing", "Last Modified", RECORD_ID_FIELD,
                                      CREATED_TIME_FIELD}
    assert records[0].values["Paid"] is True and records[1].values["Paid"] is False
    # a date-time field shown in each viewer's zone ("client") is read as the instant in UTC
    hearings = [r.values["Hearing"] for r in records if r.values["Hearing"] is not None]
    assert hearings and all(h.utcoffset() == timedelta(0) and h.tzinfo == UTC for h in hearings)
    assert source.columns() == ["Regulator ID", "Paid", "Fine", "Hearing", RECORD_ID_FIELD, CREATED_TIME_FIELD]


def test_a_computed_field_in_error_fails_its_record_by_name(serve) -> None:
    fake = serve(3)
    table = fake.table(DEMO_BASE, "Cases")
    table.fields.append({"id": "fldRatio000000001", "name": "Ratio", "type": "formula",
                         "options": {"isValid": True, "formula": "{Fine}/0", "result": {"type": "number"}}})
    table.records[case_id(2)].fields["Ratio"] = {"error": "#ERROR!"}
    table.records[case_id(3)].fields["Ratio"] = 0.25
    records = {r.record_id: r for r in AirtableSource(config(fake)).records()}
    assert records[case_id(2)].error == "field 'Ratio' (formula): Airtable computed the error #ERROR!"
    assert records[case_id(2)].values["Regulator ID"] == "REG-0000002"  # the rest of the record is still there
    assert records[case_id(3)].error is None and records[case_id(3)].values["Ratio"] == Decimal("0.25")
    assert records[case_id(1)].values["Ratio"] is None


def test_an_incremental_read_asks_only_for_what_changed(serve, target_url: str) -> None:
    fake = serve(1_000)
    profile, entity = "enforcement", "cases"
    first = AirtableSource(config(fake))
    assert len(list(first.records())) == 1_000
    assert first.report.complete and first.report.since is None
    with connect(target_url, autocommit=True) as conn:
        ensure_control_schema(conn)
        assert read_cursor(conn, profile=profile, entity=entity) is None
        advance_cursor(conn, profile=profile, entity=entity, mark=first.report.max_modified, run_id="run-1")

    table = fake.table(DEMO_BASE, "Cases")
    mark = first.report.max_modified
    lookback = timedelta(minutes=10)
    # already-seen records the look-back window asks for again: modified or created after mark - lookback
    overlap = {r.id for r in table.records.values() if max(r.modified, r.created) > mark - lookback}
    changed = [case_id(n) for n in range(100, 900, 20)]
    fake.change(DEMO_BASE, "Cases", changed, {"Status": "Closed", "Tags": None})
    added = fake.add_cases(DEMO_BASE, "Cases", 10)
    fake.reset_counts()
    requests_before = fake.requests

    with connect(target_url, autocommit=True) as conn:
        since = read_cursor(conn, profile=profile, entity=entity).high_water_mark
    second = AirtableSource(config(fake, lookback_s=lookback.total_seconds()), since=since)
    records = list(second.records())

    assert len(changed) == 40 and len(overlap) == 10  # cases 991-1000: one a minute
    read = {r.record_id for r in records}
    assert read == set(changed) | set(added) | overlap
    # counted at the fake: the 50 changes, the look-back's overlap, nothing else
    assert fake.records_served[DEMO_BASE] == 50 + len(overlap) == len(records)
    assert fake.requests - requests_before == 2  # the metadata and one page
    assert all(r.values["Status"] == "Closed" and r.values["Tags"] is None for r in records if r.record_id in changed)
    assert not second.report.complete and second.report.since == since - lookback
    assert second.report.max_modified > mark
    with connect(target_url, autocommit=True) as conn:
        advanced = advance_cursor(conn, profile=profile, entity=entity, mark=second.report.max_modified,
                                  run_id="run-2")
    assert advanced.high_water_mark == second.report.max_modified and advanced.run_id == "run-2"


def test_the_users_formula_and_the_incremental_filter_combine(serve) -> None:
    fake = serve(200)
    mark = CASES_EPOCH + timedelta(minutes=200, seconds=30)
    fake.change(DEMO_BASE, "Cases", [case_id(1), case_id(2), case_id(3)], {"Status": "Open"})
    fake.change(DEMO_BASE, "Cases", [case_id(4)], {"Status": "Closed"})
    assert combined_formula("{Status} = 'Open'", mark).startswith("AND({Status} = 'Open', OR(IS_AFTER(")
    source = AirtableSource(config(fake, formula="{Status} = 'Open'", lookback_s=0), since=mark)
    assert sorted(r.record_id for r in source.records()) == [case_id(1), case_id(2), case_id(3)]
    assert not source.report.complete  # filtered: no conclusion about deletions


def test_a_read_through_a_view_or_a_formula_is_not_complete(serve) -> None:
    fake = serve(10)
    through_view = AirtableSource(config(fake, view="Grid view"))
    assert len(list(through_view.records())) == 10 and not through_view.report.complete
    filtered = AirtableSource(config(fake, formula="{Status} = 'Open'"))
    list(filtered.records())
    assert not filtered.report.complete


def test_two_readers_of_one_base_share_its_5_requests_per_second(running) -> None:
    other = FakeTable(id="tblOther00000001", name="Other", fields=[])
    for number in range(1, 901):
        other.put(FakeRecord(id=f"recOther{number:09d}", created=CASES_EPOCH, modified=CASES_EPOCH,
                             fields={"n": number}))
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(900), other]}, token=TOKEN))
    counts: dict[str, int] = {}

    def read(name: str, page_size: int) -> None:
        source = AirtableSource(config(fake, table=name, page_size=page_size, modified_field=None, field_types={}))
        counts[name] = sum(1 for _ in source.records())

    threads = [threading.Thread(target=read, args=("Cases", 100)), threading.Thread(target=read, args=("Other", 90))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert counts == {"Cases": 900, "Other": 900}
    assert fake.requests == 9 + 10
    assert_polite(fake)


def test_the_token_never_appears_in_logs_errors_or_reports(running, serve) -> None:
    fake = serve(250, rate_limit_every=2, drop_at=4)
    logged: list[str] = []
    source = AirtableSource(config(fake), log=logged.append)
    records = list(source.records())
    texts = [*logged, source.report.summary(), repr(source.report.as_metadata()), *(repr(r) for r in records)]
    assert any("HTTP 429" in text for text in logged)
    # the token was sent, in the header only
    assert all(headers.get("Authorization") == f"Bearer {TOKEN}" for headers in fake.headers_seen)

    class Echoing(FakeAirtable):
        """A server that quotes the credentials it refused in its error, as some do."""

        def answer(self, request: Request) -> Answer:
            return Answer(403, {"error": {"type": "INVALID_PERMISSIONS",
                                          "message": f"token {request.headers.get('Authorization')} may not read"}})

    echoing = running(Echoing({DEMO_BASE: [cases_table(5)]}, token=TOKEN))
    with pytest.raises(SourceError) as refused:
        list(AirtableSource(config(echoing), log=logged.append).records())
    with pytest.raises(SourceError) as exhausted:
        list(AirtableSource(config(echoing, field_types={}, retry=QUICK_RETRIES.model_copy(
            update={"max_attempts": 2, "retry_statuses": (403,)})), log=logged.append).records())
    for failure in (refused.value, exhausted.value):
        texts += [str(failure), repr(failure), "".join(traceback.format_exception(failure))]
    texts += logged
    assert "INVALID_PERMISSIONS" in str(refused.value) and "***" in str(refused.value)
    assert "gave up after 2 attempts" in str(exhausted.value)
    assert [text for text in texts if TOKEN in text] == []


def test_missing_token_and_a_token_in_the_configuration_are_refused(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = serve(1)
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(SourceError, match=f"environment variable {TOKEN_ENV} .* is not set"):
        list(AirtableSource(config(fake)).records())
    with pytest.raises(ValueError, match="token_env must name an environment variable"):
        config(fake, token_env=TOKEN)
    assert fake.requests == 0


def test_a_malformed_page_names_the_url_and_the_page(serve) -> None:
    for kind, expected in (("not_json", "the answer is not JSON"), ("no_records", "no 'records' list")):
        fake = serve(300, malformed_at={3: kind})
        with pytest.raises(SourceError) as failure:
            list(AirtableSource(config(fake, field_types={})).records())
        message = str(failure.value)
        assert f"airtable {DEMO_BASE}/Cases: page 3 ({fake.url}/v0/{DEMO_BASE}/Cases?" in message
        assert expected in message and "offset=" in message and TOKEN not in message


def test_unknown_fields_and_an_unknown_table_are_named(serve) -> None:
    fake = serve(1)
    with pytest.raises(SourceError, match="fields: no such field 'Fien'"):
        list(AirtableSource(config(fake, fields=["Fien"])).records())
    with pytest.raises(SourceError, match="the base's schema has no table 'Casez'"):
        list(AirtableSource(config(fake, table="Casez")).records())
    with pytest.raises(SourceError, match="page 1 .*TABLE_NOT_FOUND"):
        list(AirtableSource(config(fake, table="Casez", field_types={})).records())


def test_the_table_can_be_named_by_its_id(serve) -> None:
    fake = serve(5)
    source = AirtableSource(config(fake, table=CASES_TABLE_ID))
    assert [r.record_id for r in source.records()] == [case_id(n) for n in range(1, 6)]
    assert source.report.max_modified == CASES_EPOCH + timedelta(minutes=5, seconds=30)


def test_a_complete_read_after_deletions_lacks_exactly_the_deleted_records(serve) -> None:
    fake = serve(300)
    before = {r.record_id for r in AirtableSource(config(fake)).records()}
    fake.delete(DEMO_BASE, "Cases", [case_id(7), case_id(250)])
    again = AirtableSource(config(fake))
    after = {r.record_id for r in again.records()}
    assert again.report.complete and before - after == {case_id(7), case_id(250)} and after <= before


def test_the_fake_shuts_down_cleanly() -> None:
    import socket

    fake = FakeAirtable({DEMO_BASE: [cases_table(150)]}, token=TOKEN)
    url = fake.start()
    threads = threading.active_count()
    source = AirtableSource(config(fake))
    records = source.records()
    next(records)  # a keep-alive connection is open and idle on the server
    fake.stop()
    records.close()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    deadline = time.monotonic() + 5
    while threading.active_count() >= threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() < threads  # the serving and connection threads are gone


def test_since_must_be_an_instant(serve) -> None:
    fake = serve(1)
    with pytest.raises(ValueError, match="has no time zone"):
        AirtableSource(config(fake), since=datetime(2025, 1, 1))
    assert AirtableSource(config(fake), since=datetime(2025, 1, 1, tzinfo=UTC)).window is not None
