"""The embedded server: started from the pip-installed package, configured for bulk imports."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
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


def test_a_server_already_shutting_down_is_stopped_without_a_traceback(data_dir: Path) -> None:
    # SIGTERM is PostgreSQL's smart shutdown: it waits for the connected client, and the
    # postmaster reads "stopping", not "ready", which the package's own stop refuses
    url = start_embedded_server(data_dir)
    pid_file = data_dir / "postmaster.pid"
    client = connect(url)
    try:
        client.execute("SELECT 1")
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if "stopping" in pid_file.read_text():
                break
            time.sleep(0.1)
        assert "stopping" in pid_file.read_text()
        # as `python -m import_pipelines stop` does it: from another process
        stopped = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from import_pipelines."
                                  "db.embedded import stop_embedded_server as stop; print(stop(Path(sys.argv[1])))",
                                  str(data_dir)], capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == "True"
    finally:
        client.close()
    # a fast shutdown: the waiting client was disconnected, the server is gone
    assert not pid_file.exists()
    with pytest.raises(psycopg.OperationalError):
        connect(url).close()
