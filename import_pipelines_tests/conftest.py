"""Shared fixtures: a real PostgreSQL server and a fresh database per test.

The server is ``IMPORT_PIPELINES_TEST_PG_URL`` when set (e.g. the system server on
127.0.0.1:5432), otherwise the embedded server under ``.data/test-postgres``. Every database a
test asks for is created empty and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from import_pipelines.db import drop_database, ensure_database
from import_pipelines.settings import PROJECT_ROOT

TEST_SERVER_ENV = "IMPORT_PIPELINES_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Conninfo of the PostgreSQL server the tests run against."""
    configured = os.environ.get(TEST_SERVER_ENV)
    if configured:
        return configured
    from import_pipelines.db.embedded import start_embedded_server

    return start_embedded_server(PROJECT_ROOT / ".data" / "test-postgres")


@pytest.fixture
def new_database(pg_server: str) -> Iterator[Callable[[str], str]]:
    """Factory: ``new_database("source")`` creates an empty database and returns its conninfo."""
    created: list[str] = []

    def make(label: str = "db") -> str:
        name = f"ipt_{label}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        return ensure_database(pg_server, name)

    yield make
    for name in created:
        drop_database(pg_server, name)


@pytest.fixture
def source_url(new_database: Callable[[str], str]) -> str:
    """A fresh, empty source database."""
    return new_database("source")


@pytest.fixture
def target_url(new_database: Callable[[str], str]) -> str:
    """A fresh, empty target database."""
    return new_database("target")
