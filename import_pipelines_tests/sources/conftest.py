"""Fixtures of the source tests: a fake Google (Sheets, Drive, OAuth) behind the real gspread client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from import_pipelines_tests.sources.fake_google import FakeGoogle, service_account_key

CREDENTIALS_ENV = "IMPORT_PIPELINES_TEST_GOOGLE_KEY"


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
