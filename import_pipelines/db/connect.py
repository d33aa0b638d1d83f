"""The one place that opens database connections.

Source connections are read-only by construction: the session default is READ ONLY, so even a
statement that slipped past template validation cannot write to a source system.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def connect(url: str, *, read_only: bool = False, autocommit: bool = False, pinned_text: bool = False,
            application_name: str = "import_pipelines") -> psycopg.Connection:
    """Open a psycopg 3 connection to ``url`` (a URL or a libpq conninfo string).

    ``read_only`` sets ``default_transaction_read_only`` for the whole session; ``pinned_text``
    starts the session with the pinned text form of COPY (:mod:`import_pipelines.db.copy`), for
    sessions whose first statement must open a snapshot transaction.
    """
    from import_pipelines.db.copy import PINNED_OPTIONS

    options = (["-c default_transaction_read_only=on"] if read_only else []) + (PINNED_OPTIONS if pinned_text else [])
    params = {"application_name": application_name}
    if options:
        params["options"] = " ".join(options)
    return psycopg.connect(strip_driver(url), autocommit=autocommit, **params)


@contextmanager
def connection(url: str, *, read_only: bool = False, autocommit: bool = False,
               pinned_text: bool = False) -> Iterator[psycopg.Connection]:
    """Context manager around :func:`connect` that always closes the connection."""
    conn = connect(url, read_only=read_only, autocommit=autocommit, pinned_text=pinned_text)
    try:
        yield conn
    finally:
        conn.close()


def configure_bulk_session(conn: psycopg.Connection) -> None:
    """Session settings for set-based bulk work on a target.

    Hash joins of a batch against large key relations spill to disk at the 4 MB ``work_mem``
    default, and JIT-compiling each batch's statements costs more than it saves on tens of
    thousands of rows. ``temp_buffers`` only counts before the session's first temp table.
    """
    conn.execute("SET work_mem = '64MB'")
    conn.execute("SET temp_buffers = '128MB'")
    conn.execute("SET jit = off")
    if not conn.autocommit:
        conn.commit()


def strip_driver(url: str) -> str:
    """Accept SQLAlchemy-style ``postgresql+psycopg2://`` URLs as well as plain libpq ones."""
    scheme, sep, rest = url.partition("://")
    if sep and "+" in scheme:
        return f"{scheme.split('+', 1)[0]}://{rest}"
    return url


def with_database(url: str, dbname: str) -> str:
    """Return a conninfo string for the same server as ``url`` but database ``dbname``."""
    return make_conninfo(strip_driver(url), dbname=dbname)


def sqlalchemy_url(url: str, *, driver: str = "psycopg2") -> str:
    """Return a ``postgresql+<driver>://`` URL for ``url`` (dagster-postgres needs psycopg2).

    Unix-socket servers (the embedded one) keep their socket folder as the ``host`` query
    parameter, which both psycopg2 and SQLAlchemy understand.
    """
    from urllib.parse import quote

    params = conninfo_to_dict(strip_driver(url))
    user = quote(params.pop("user", "postgres"), safe="")
    password = params.pop("password", None)
    host = params.pop("host", "")
    port = params.pop("port", None)
    dbname = quote(params.pop("dbname", "postgres"), safe="")
    auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    query = {k: v for k, v in params.items() if v is not None}
    if host.startswith("/"):
        query["host"] = host
        netloc = auth
    else:
        netloc = f"{auth}{host}{':' + str(port) if port else ''}"
    if host.startswith("/") and port:
        query["port"] = port
    qs = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items())
    return f"postgresql+{driver}://{netloc}/{dbname}" + (f"?{qs}" if qs else "")


def ensure_database(url: str, dbname: str) -> str:
    """Create database ``dbname`` on the server of ``url`` if missing; return its conninfo."""
    with connection(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(dbname)))
    return with_database(url, dbname)


def drop_database(url: str, dbname: str) -> None:
    """Drop database ``dbname`` (closing its other sessions first) if it exists."""
    with connection(url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(dbname)))
