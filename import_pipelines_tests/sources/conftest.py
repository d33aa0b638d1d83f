"""Fixtures of the source tests: fake servers stopped after each test, and a fake Google (Sheets,
Drive, OAuth) behind the real gspread client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from import_pipelines.demo.fake_http import FakeHttpServer
from import_pipelines_tests.sources.fake_google import FakeGoogle, service_account_key

Fake = TypeVar("Fake", bound=FakeHttpServer)

CREDENTIALS_ENV = "IMPORT_PIPELINES_TEST_GOOGLE_KEY"


MAX_REQUESTS_PER_SECOND = 5  # Airtable's limit per base, kept by every test against every fake


@pytest.fixture
def running() -> Iterator[Callable[[Fake], Fake]]:
    """``running(fake)`` starts a fake server and returns it; every one is stopped after the test.

    After the test, each fake must have seen at most 5 requests of one scope (an Airtable base, an
    API host) in any one second: no test is allowed to be impolite, whatever it asserts itself.
    """
    started: list[FakeHttpServer] = []

    def start(fake: Fake) -> Fake:
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
    for fake in started:
        for scope in fake.arrivals:
            assert fake.max_requests_in_window(scope) <= MAX_REQUESTS_PER_SECOND, (
                f"{type(fake).__name__} saw {fake.max_requests_in_window(scope)} requests of {scope!r} in one second")



@pytest.fixture(scope="session")
def google_key() -> tuple[dict, bytes]:
    """One service-account key for the session (generating an RSA key takes a moment)."""
    return service_account_key()


@pytest.fixture
def google(google_key, monkeypatch) -> Iterator[FakeGoogle]:
    """The fake endpoints, with the key's JSON in :data:`CREDENTIALS_ENV` as a deployment would hold it."""
    key, public = google_key
    monkeypatch.setenv(CREDENTIALS_ENV, json.dumps(key))
    yield FakeGoogle(public_key_pem=public, client_email=key["client_email"])


@pytest.fixture
def sheets(google):
    """A gspread client authenticated through the fake token endpoint, every request to the fake."""
    from import_pipelines.sources.sheets import sheets_client

    client = sheets_client(credentials_env=CREDENTIALS_ENV, adapter=google, timeout_s=5)
    yield client
    client.http_client.session.close()
