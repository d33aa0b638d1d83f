"""The HTTP JSON API source: the real requests client against a local fake API, in every pagination style."""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from pydantic import ValidationError

from import_pipelines.demo.fake_http import Answer, Request
from import_pipelines.sources import RecordSource, SourceError
from import_pipelines.sources.http_api import HttpApiConfig, HttpApiSource
from import_pipelines.sources.http_session import RetryPolicy
from import_pipelines_tests.fakes.json_api import EPOCH, FakeJsonApi, items

TOKEN = "api-secret-token-9f8e7d6c"
TOKEN_ENV = "IMPORT_PIPELINES_TEST_API_TOKEN"
QUICK_RETRIES = RetryPolicy(rate_limit_penalty_s=0.2, backoff_s=0.05, backoff_max_s=1.0, jitter_s=0.05)
PAGINATIONS = {
    "page": {"style": "page", "page_size": 40},
    "offset": {"style": "offset", "page_size": 40},
    "cursor": {"style": "cursor", "next_cursor_path": "meta.next_cursor", "size_param": "limit", "page_size": 40},
    "link": {"style": "link", "size_param": "per_page", "page_size": 40},
}


@pytest.fixture(autouse=True)
def api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture
def serve(running) -> Callable[..., FakeJsonApi]:
    """Factory: ``serve(records, style=..., **options)`` starts a fake API."""
    return lambda records, **options: running(FakeJsonApi(records, **{"token": TOKEN, **options}))


def config(fake: FakeJsonApi, **overrides) -> HttpApiConfig:
    settings = {"url": f"{fake.url}/v1/items", "records_path": "data.items", "token_env": TOKEN_ENV,
                "modified_path": "updated_at", "retry": QUICK_RETRIES, **overrides}
    return HttpApiConfig.model_validate(settings)


@pytest.mark.parametrize("style", ["page", "offset", "cursor", "link"])
def test_each_pagination_style_reads_every_record_once(serve, style: str) -> None:
    fake = serve(items(130), style=style)
    source = HttpApiSource(config(fake, pagination=PAGINATIONS[style]))
    assert isinstance(source, RecordSource)
    records = list(source.records())
    assert [r.record_id for r in records] == [str(n) for n in range(1, 131)]
    assert fake.served_ids == Counter(range(1, 131))
    # page and offset stop at the first empty page; cursor and link when there is no next one
    assert fake.requests == (5 if style in ("page", "offset") else 4) == source.report.pages
    assert records[7].values["owner"] == {"name": "Owner 1", "tags": ["a", "b"]}  # nested values stay nested
    assert records[7].location == f"api {fake.url}/v1/items page 1 item 8"
    assert source.report.complete and source.report.max_modified == EPOCH + timedelta(minutes=130)
    assert source.columns() == ["id", "name", "updated_at", "owner"]
    assert fake.max_requests_in_window() <= 5


def test_a_short_page_ends_the_read_only_when_the_api_honours_the_page_size(serve) -> None:
    capped = serve(items(130), style="page", max_page_size=25)  # asked for 40, serves 25
    records = list(HttpApiSource(config(capped, pagination={"style": "page", "page_size": 40})).records())
    assert len(records) == 130  # a short page was not taken for the last one
    trusting = serve(items(130), style="page")
    source = HttpApiSource(config(trusting, pagination={"style": "page", "page_size": 40, "short_page_is_last": True}))
    assert len(list(source.records())) == 130 and trusting.requests == 4


def test_no_pagination_and_a_top_level_list(running) -> None:
    class Bare(FakeJsonApi):
        def answer(self, request: Request) -> Answer:
            return Answer(body=self.records)

    fake = running(Bare(items(3), style="none", token=None))
    source = HttpApiSource(config(fake, records_path="", token_env=None))
    assert [r.values["name"] for r in source.records()] == ["Item 1", "Item 2", "Item 3"]
    assert "Authorization" not in fake.headers_seen[0]


def test_a_header_token_and_fixed_parameters(serve) -> None:
    fake = serve(items(5), style="page", token_header="X-API-Key", token_scheme=None)
    source = HttpApiSource(config(fake, auth="header", token_header="X-API-Key", params={"include": "owner"},
                                  headers={"Accept": "application/json"}, pagination=PAGINATIONS["page"]))
    assert len(list(source.records())) == 5
    assert fake.headers_seen[0]["X-API-Key"] == TOKEN and "Authorization" not in fake.headers_seen[0]
    assert fake.headers_seen[0]["Accept"] == "application/json"


def test_an_incremental_read_sends_the_since_parameter_with_the_lookback(serve) -> None:
    fake = serve(items(200), style="cursor")
    first = HttpApiSource(config(fake, since_param="updated_since", pagination=PAGINATIONS["cursor"]))
    assert len(list(first.records())) == 200
    mark = first.report.max_modified
    fake.records[10]["updated_at"] = (mark + timedelta(hours=1)).isoformat()
    fake.records.extend(items(3, start=201))  # updated 201-203 minutes after the epoch
    fake.reset_counts()
    fake.served_ids.clear()
    second = HttpApiSource(config(fake, since_param="updated_since", lookback_s=120, pagination=PAGINATIONS["cursor"]),
                           since=mark)
    read = [r.record_id for r in second.records()]
    # 199 and 200 are the look-back's overlap (updated after mark - 2 minutes)
    assert sorted(read, key=int) == ["11", "199", "200", "201", "202", "203"]
    assert sum(fake.served_ids.values()) == 6
    assert not second.report.complete and second.report.max_modified == mark + timedelta(hours=1)
    with pytest.raises(SourceError, match="needs since_param"):
        HttpApiSource(config(fake), since=mark)


def test_429s_and_a_dropped_connection_are_waited_out_at_the_same_page(serve) -> None:
    fake = serve(items(400), style="offset", rate_limit_every=3, drop_at=5)
    logged: list[str] = []
    source = HttpApiSource(config(fake, pagination=PAGINATIONS["offset"]), log=logged.append)
    ids = Counter(r.record_id for r in source.records())
    assert len(ids) == 400 and set(ids.values()) == {1} and sum(fake.served_ids.values()) == 400
    stats = source.report.stats
    assert stats.rate_limited == fake.rate_limited > 0 and stats.retried_errors == 1
    assert stats.requests == fake.requests == 11 + fake.rate_limited + 1
    assert f"waited {fake.rate_limited} times after HTTP 429" in logged[-1]
    assert fake.max_requests_in_window() <= 5


def test_retry_after_is_honoured(running) -> None:
    class Slow(FakeJsonApi):
        def answer(self, request: Request) -> Answer:
            if self.requests == 1:
                return Answer(429, {"error": "slow down"}, headers={"Retry-After": "1"})
            return super().answer(request)

    fake = running(Slow(items(3), style="none", token=TOKEN))
    source = HttpApiSource(config(fake, retry=QUICK_RETRIES.model_copy(update={"rate_limit_penalty_s": 30})))
    assert len(list(source.records())) == 3
    assert 1.0 <= source.report.stats.waited_s < 3.0  # Retry-After's second, not the 30-second default penalty


@pytest.mark.parametrize(("kind", "expected"), [("not_json", "the answer is not JSON (text/html)"),
                                                ("no_records", "no list of records at 'data.items': found nothing"
                                                               " (the answer's keys: unexpected)")])
def test_a_malformed_page_is_a_clear_error_naming_the_url_and_the_page(serve, kind: str, expected: str) -> None:
    fake = serve(items(100), style="page", malformed_at={2: kind})
    with pytest.raises(SourceError) as failure:
        list(HttpApiSource(config(fake, pagination=PAGINATIONS["page"])).records())
    message = str(failure.value)
    assert message.startswith(f"api {fake.url}/v1/items: page 2 ({fake.url}/v1/items?per_page=40&page=2): ")
    assert expected in message and TOKEN not in "".join(traceback.format_exception(failure.value))


def test_an_error_status_names_the_page_and_keeps_the_token_out(running) -> None:
    class Echoing(FakeJsonApi):
        def answer(self, request: Request) -> Answer:
            return Answer(403, {"error": f"{request.headers.get('Authorization')} may not list items"})

    logged: list[str] = []
    fake = running(Echoing(items(1), style="none", token=TOKEN))
    with pytest.raises(SourceError) as failure:
        list(HttpApiSource(config(fake), log=logged.append).records())
    with pytest.raises(SourceError) as wrong:
        list(HttpApiSource(config(fake, token_env="NO_SUCH_TOKEN_VARIABLE")).records())
    assert "page 1" in str(failure.value) and "HTTP 403" in str(failure.value) and "Bearer ***" in str(failure.value)
    assert "NO_SUCH_TOKEN_VARIABLE" in str(wrong.value)
    texts = [*logged, str(failure.value), "".join(traceback.format_exception(failure.value))]
    assert [text for text in texts if TOKEN in text] == []


def test_pagination_that_does_not_advance_or_leaves_the_origin_is_refused(running) -> None:
    class Stuck(FakeJsonApi):
        def answer(self, request: Request) -> Answer:
            return Answer(body={"data": {"items": self.records}, "meta": {"next_cursor": "same"}})

    class Elsewhere(FakeJsonApi):
        def answer(self, request: Request) -> Answer:
            return Answer(body={"data": {"items": self.records}},
                          headers={"Link": '<http://127.0.0.2:9/v1/items?page=2>; rel="next"'})

    stuck = running(Stuck(items(2), style="cursor", token=TOKEN))
    with pytest.raises(SourceError, match="page 2: the next cursor repeats an earlier one"):
        list(HttpApiSource(config(stuck, pagination=PAGINATIONS["cursor"])).records())
    elsewhere = running(Elsewhere(items(2), style="link", token=TOKEN))
    with pytest.raises(SourceError, match=r"another origin \(http://127.0.0.2:9\); not following it"):
        list(HttpApiSource(config(elsewhere, pagination={"style": "link"})).records())
    assert elsewhere.requests == 1


def test_every_request_loop_is_bounded(serve) -> None:
    fake = serve(items(100), style="page")
    with pytest.raises(SourceError, match="more than max_pages=2 pages"):
        list(HttpApiSource(config(fake, max_pages=2, pagination=PAGINATIONS["page"])).records())
    assert fake.requests == 2


def test_records_that_are_not_objects_or_lack_an_id_fail_alone(running) -> None:
    class Mixed(FakeJsonApi):
        def answer(self, request: Request) -> Answer:
            return Answer(body={"data": {"items": [{"id": 1, "updated_at": "2025-03-01T00:00:00Z"}, ["x"],
                                                   {"name": "no id"}, {"id": 4, "updated_at": "last tuesday"}]}})

    fake = running(Mixed([], style="none", token=TOKEN))
    records = list(HttpApiSource(config(fake)).records())
    assert [r.error for r in records] == [None, "page 1 item 2 is a list, not an object", "no id at 'id'",
                                          "updated_at: 'last tuesday' is not an ISO 8601 timestamp"]
    assert records[3].record_id == "4" and records[3].values["id"] == 4


def test_the_configuration_refuses_credentials_and_unknown_styles() -> None:
    with pytest.raises(ValidationError, match="must not carry credentials"):
        HttpApiConfig(url="https://user:pw@api.example.org/items")
    with pytest.raises(ValidationError, match="token_env must name an environment variable"):
        HttpApiConfig(url="https://api.example.org/items", token_env="Bearer abc.def")
    with pytest.raises(ValidationError, match="pagination"):
        HttpApiConfig.model_validate({"url": "https://api.example.org/items", "pagination": {"style": "scroll"}})
