"""The embedded server: started from the pip-installed package, configured for bulk imports."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from import_pipelines.db import connect
from import_pipelines.db.embedded import SERVER_SETTINGS, start_embedded_server, stop_embedded_server
from import_pipelines.settings import PROJECT_ROOT


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = PROJECT_ROOT / ".data" / f"test-embedded-{uuid.uuid4().hex[:8]}"
    try:
        yield folder
    finally:
        stop_embedded_server(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_new_server_runs_with_the_bulk_settings_and_keeps_running(data_dir: Path) -> None:
    url = start_embedded_server(data_dir)
    with connect(url) as conn:
        settings = {name: conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0] for name in SERVER_SETTINGS}
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    assert settings == SERVER_SETTINGS
    # a second process attaches to the running server: no second restart
    assert start_embedded_server(data_dir) == url
    with connect(url) as conn:
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == started
    assert stop_embedded_server(data_dir)
    assert not stop_embedded_server(data_dir)
