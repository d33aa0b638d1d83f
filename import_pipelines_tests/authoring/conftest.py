"""A FreeScout demo source shared by the authoring tests, which only ever read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from import_pipelines.db import drop_database, ensure_database
from import_pipelines.demo.freescout import generate_freescout

DEMO_CUSTOMERS = 1500


@pytest.fixture(scope="session")
def freescout_source(pg_server: str) -> Iterator[str]:
    """A generated FreeScout database (no foreign keys declared, as FreeScout's own migrations)."""
    name = f"ipt_authoring_fs_{uuid.uuid4().hex[:10]}"
    url = ensure_database(pg_server, name)
    try:
        generate_freescout(url, customers=DEMO_CUSTOMERS)
        yield url
    finally:
        drop_database(pg_server, name)
