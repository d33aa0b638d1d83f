"""The one place that opens database connections.

Source connections are read-only by construction: the session default is READ ONLY, so even a
statement that slipped past template validation cannot write to a source system.

A connection that fails raises :class:`DatabaseConnectionError`, which says which connection
(``purpose``: "source of profile freescout_demo") and why, and never carries any part of the
credentials: libpq quotes the offending fragment of a malformed URL (a ``%`` that is not an
escape inside a password puts the password in the message) and names the user of a refused
login, so its message is never passed on as it is. A malformed URL is diagnosed here without
quoting it; a server's refusal is passed on with the user name and password cut out. The
error is raised outside the ``except`` block, so no chained exception carries libpq's text into a
traceback, Dagster's event log or a compute log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class DatabaseConnectionError(psycopg.OperationalError):
    """A connection that could not be opened; the message names it and has no credentials.

    ``transient`` is true when the server was there but not taking connections (refused, starting
    up or shutting down): worth another attempt, unlike a refused login or a missing database.
    """

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def connect(url: str, *, read_only: bool = False, autocommit: bool = False, pinned_text: bool = False,
            application_name: str = "import_pipelines", purpose: str | None = None) -> psycopg.Connection:
    """Open a psycopg 3 connection to ``url`` (a URL or a libpq conninfo string).

    ``read_only`` sets ``default_transaction_read_only`` for the whole session; ``pinned_text``
    starts the session with the pinned text form of COPY (:mod:`import_pipelines.db.copy`), for
    sessions whose first statement must open a snapshot transaction. ``purpose`` says in an
    error which connection failed ("source of profile x"); the server's address and database are
    added to it. Raises :class:`DatabaseConnectionError`.
    """
    from import_pipelines.db.copy import PINNED_OPTIONS

    params = parse_url(url, purpose=purpose)
    options = {"application_name": application_name}
    startup = (["-c default_transaction_read_only=on"] if read_only else []) + (PINNED_OPTIONS if pinned_text else [])
    if startup:
        options["options"] = " ".join(startup)
    failure, transient = None, False
    try:
        return psycopg.connect(make_conninfo("", **params), autocommit=autocommit, **options)
    except psycopg.Error as error:
        failure = scrub(str(error), params)
        transient = error.sqlstate == "57P03" or any(sign in str(error) for sign in _RESTARTING)
    raise DatabaseConnectionError(f"cannot connect to {describe(params, purpose)}: {failure}", transient=transient)


# libpq's words for a server that is restarting rather than refusing this login
_RESTARTING = ("Connection refused", "the database system is starting up", "the database system is shutting down",
               "the database system is in recovery mode")


@contextmanager
def connection(url: str, *, read_only: bool = False, autocommit: bool = False,
               pinned_text: bool = False, purpose: str | None = None) -> Iterator[psycopg.Connection]:
    """Context manager around :func:`connect` that always closes the connection."""
    conn = connect(url, read_only=read_only, autocommit=autocommit, pinned_text=pinned_text, purpose=purpose)
    try:
        yield conn
    finally:
        conn.close()


def parse_url(url: str, *, purpose: str | None = None) -> dict[str, str]:
    """The libpq parameters of ``url``; a malformed one raises :class:`DatabaseConnectionError`
    saying what is wrong without quoting any of it."""
    problem = None
    try:
        return {k: v for k, v in conninfo_to_dict(strip_driver(url)).items() if v is not None}
    except (psycopg.Error, TypeError, ValueError):
        problem = _diagnose(url)
    raise DatabaseConnectionError(f"cannot connect to the {purpose or 'database'}: {problem}")


def database_identity(url: str) -> str:
    """``host:port/database`` of ``url``: which database it is, with no user and no password."""
    params = parse_url(url)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or '5432'}/{params.get('dbname') or ''}"


def describe(params: dict[str, str], purpose: str | None) -> str:
    """``the source of profile x (db.example.org:5432/freescout)`` for messages."""
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or '5432'}/{params.get('dbname') or ''}"
    return f"the {purpose} ({where})" if purpose else f"the database {where}"


def scrub(message: str, params: dict[str, str]) -> str:
    """``message`` with every spelling of the user name and password replaced by ``***``."""
    secrets = set()
    for key in ("password", "user"):
        value = params.get(key)
        if value:
            secrets |= {value, quote(value, safe=""), quote(value), unquote(value)}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        message = message.replace(secret, "***")
    # libpq may still quote a conninfo fragment ("... after "xyz" in connection info string")
    message = re.sub(r'"[^"]*" in connection info string', '"***" in connection info string', message)
    return " ".join(message.split())


def _diagnose(url: str) -> str:
    """Why ``url`` does not parse, in words that quote none of it."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        if "=" in text:
            return "the connection string is not valid libpq key=value text (check quoting of values)"
        return "the value is neither a postgresql:// URL nor a libpq key=value connection string"
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        return f"the URL's scheme is {scheme.split('+', 1)[0]!r}, not postgresql"
    authority = rest.split("/", 1)[0]
    credentials, at, _ = authority.rpartition("@")
    bad_escape = re.compile(r"%(?![0-9A-Fa-f]{2})")
    if at and bad_escape.search(credentials):
        return ("the URL's user name or password contains a '%' that is not a percent-escape"
                " (write a literal % as %25)")
    if bad_escape.search(rest):
        return "the URL contains a '%' that is not a percent-escape (write a literal % as %25)"
    return "the URL is not a valid postgresql:// URL"


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
    return make_conninfo("", **{**parse_url(url), "dbname": dbname})


def sqlalchemy_url(url: str, *, driver: str = "psycopg2") -> str:
    """Return a ``postgresql+<driver>://`` URL for ``url`` (dagster-postgres needs psycopg2).

    Unix-socket servers (the embedded one) keep their socket folder as the ``host`` query
    parameter, which both psycopg2 and SQLAlchemy understand.
    """
    params = parse_url(url)
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
