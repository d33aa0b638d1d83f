"""Test a database connection: can it be reached, what is it, and what may this role read there?

The report names the server version, whether the session is read-only by the server's own
settings (a role or database default, or a standby in recovery), and per schema how many tables
the role may read and write. A failure is classified (DNS, refused, timeout, authentication, SSL
required, missing database, no privilege) with a message that says what to check.

Credentials never appear in a report: the connection is described as ``user@host:port/dbname``,
and any text that came from the driver is scrubbed of the password before it is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from import_pipelines.db.connect import connect, strip_driver

FailureKind = Literal["dns", "refused", "timeout", "authentication", "ssl_required", "no_database", "no_privilege",
                      "error"]

_READABLE_SQL = """
SELECT n.nspname,
       count(*),
       count(*) FILTER (WHERE has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')),
       count(*) FILTER (WHERE has_schema_privilege(n.oid, 'USAGE')
                          AND has_table_privilege(c.oid, 'INSERT, UPDATE'))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
GROUP BY n.nspname
ORDER BY n.nspname
"""

_SESSION_SQL = """
SELECT current_setting('server_version'), current_user, current_database(),
       current_setting('default_transaction_read_only')::boolean, pg_is_in_recovery(),
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
       pg_has_role(current_user, 'pg_read_all_data', 'MEMBER')
"""


@dataclass(frozen=True)
class SchemaAccess:
    """Tables (and views) of one schema, and how many of them the role may read and write."""

    schema: str
    tables: int
    readable: int
    writable: int


@dataclass(frozen=True)
class ConnectionReport:
    """The outcome of :func:`check_connection`; ``ok`` is False with a ``failure`` kind and ``message``."""

    target: str
    ok: bool
    failure: FailureKind | None = None
    message: str = ""
    server_version: str | None = None
    user: str | None = None
    database: str | None = None
    read_only: bool | None = None
    in_recovery: bool | None = None
    superuser: bool | None = None
    reads_all_data: bool | None = None
    access: list[SchemaAccess] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-serialisable document."""
        return {"target": self.target, "ok": self.ok, "failure": self.failure, "message": self.message,
                "server_version": self.server_version, "user": self.user, "database": self.database,
                "read_only": self.read_only, "in_recovery": self.in_recovery, "superuser": self.superuser,
                "reads_all_data": self.reads_all_data,
                "access": [{"schema": a.schema, "tables": a.tables, "readable": a.readable, "writable": a.writable}
                           for a in self.access]}

    def render_text(self) -> str:
        """The report as a person reads it in a terminal."""
        if self.server_version is None:
            return f"{self.target}: cannot connect ({self.failure}): {self.message}"
        lines = [f"{self.target}: reachable, PostgreSQL {self.server_version}, connected as {self.user}"]
        why = (" (a standby in recovery)" if self.in_recovery
               else " (default_transaction_read_only)" if self.read_only else "")
        lines.append(f"session read-only by the server's settings: {'yes' + why if self.read_only else 'no'}")
        if self.superuser or self.reads_all_data:
            lines.append("the role may read every table (" + ("superuser" if self.superuser else "pg_read_all_data")
                         + ")")
        for access in self.access:
            lines.append(f"schema {access.schema}: may read {access.readable} of {access.tables} tables,"
                         f" write {access.writable}")
        if not self.ok:
            lines.append(f"problem ({self.failure}): {self.message}")
        return "\n".join(lines)


def describe_url(url: str) -> str:
    """``user@host:port/dbname`` for a URL or conninfo string, never the password."""
    try:
        params = conninfo_to_dict(strip_driver(url))
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{params.get('user') or '<default user>'}@{host}:{port}/{params.get('dbname') or '<default database>'}"


def check_connection(url: str, *, timeout: int = 5) -> ConnectionReport:
    """Connect to ``url`` and report reachability, version, read-only state and what the role may read.

    Never raises for a connection problem: the report says what failed and what to check.
    """
    target = describe_url(url)
    password = _password(url)
    try:
        conn = connect(_with_timeout(url, timeout), application_name="import_pipelines test-connection")
    except psycopg.Error as error:
        kind, message = classify_error(error, url=url)
        return ConnectionReport(target=target, ok=False, failure=kind, message=scrub(message, password))
    try:
        with conn:
            session = conn.execute(_SESSION_SQL).fetchone()
            version, user, database, read_only, in_recovery, superuser, reads_all = session
            access = [SchemaAccess(*row) for row in conn.execute(_READABLE_SQL).fetchall()]
    except psycopg.Error as error:
        return ConnectionReport(target=target, ok=False, failure="error",
                                message=scrub(_first_line(error), password))
    report = dict(target=target, server_version=version, user=user, database=database,
                  read_only=read_only or in_recovery, in_recovery=in_recovery, superuser=superuser,
                  reads_all_data=reads_all, access=access)
    tables = sum(a.tables for a in access)
    if tables and not sum(a.readable for a in access):
        return ConnectionReport(ok=False, failure="no_privilege",
                                message=f"role {user!r} may read none of the {tables} tables of database "
                                        f"{database!r}; grant it SELECT (and USAGE on their schemas)", **report)
    return ConnectionReport(ok=True, **report)


def classify_error(error: psycopg.Error, *, url: str = "") -> tuple[FailureKind, str]:
    """The kind of a connection failure and a message that says what to check.

    libpq reports connection failures as text without an SQLSTATE, so the kinds are recognised
    by libpq's and the server's own wording.
    """
    text = str(error)
    where = describe_url(url) if url else "the server"
    host = where.split("@", 1)[-1].split("/", 1)[0]
    lower = text.lower()
    if ("failed to resolve host" in lower or "could not translate host name" in lower
            or "name or service not known" in lower or "nodename nor servname" in lower
            or "temporary failure in name resolution" in lower):
        return "dns", f"the host name of {host} does not resolve (DNS); check the host in the URL"
    if "connection refused" in lower or ("no such file or directory" in lower and "socket" in lower):
        return "refused", (f"nothing accepts connections at {host}: is the server running and listening there"
                           " (listen_addresses, port, firewall)?")
    if "timeout expired" in lower or "timed out" in lower:
        return "timeout", f"no answer from {host} in time: a firewall dropping packets, or the wrong host"
    if "server does not support ssl" in lower:
        return "ssl_required", ("the URL requires SSL (sslmode=require or stricter) but the server does not offer"
                                " it; enable SSL on the server or lower sslmode")
    if "no pg_hba.conf entry" in lower and ("ssl off" in lower or "no encryption" in lower):
        return "ssl_required", ("the server admits this user and database only over SSL; add sslmode=require"
                                " to the URL")
    if "ssl" in lower and ("required" in lower or "certificate" in lower):
        return "ssl_required", f"SSL: {_server_message(text)}"
    if "password authentication failed" in lower or "authentication failed" in lower:
        return "authentication", (f"authentication failed ({_server_message(text)}); check the password"
                                  " (in the URL's variable, PGPASSWORD or ~/.pgpass)")
    if "is not permitted to log in" in lower:
        return "authentication", f"{_server_message(text)}: the role exists but has NOLOGIN; use a login role"
    if re.search(r'role "[^"]*" does not exist', lower):
        return "authentication", f"{_server_message(text)}: check the user name in the URL"
    if "no pg_hba.conf entry" in lower:
        return "authentication", (f"{_server_message(text)}: the server's pg_hba.conf does not admit this user"
                                  " from this host")
    if "no password supplied" in lower:
        return "authentication", "the server asks for a password and none was given (URL, PGPASSWORD or ~/.pgpass)"
    if re.search(r'database "[^"]*" does not exist', lower):
        return "no_database", f"{_server_message(text)}: check the database name in the URL"
    if "permission denied for database" in lower:
        return "no_privilege", f"{_server_message(text)}: the role lacks the CONNECT privilege on it"
    return "error", _first_line(error)


def scrub(text: str, password: str | None) -> str:
    """``text`` without ``password`` (and without any ``password=...`` a message might echo)."""
    if password:
        text = text.replace(password, "***")
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)


def _server_message(text: str) -> str:
    # libpq prefixes the server's message with where it tried; the server's own words come last
    message = text.split("failed:", 1)[-1].strip()
    return re.sub(r"^(FATAL|ERROR):\s+", "", message.splitlines()[0] if message else text)


def _first_line(error: psycopg.Error) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _password(url: str) -> str | None:
    try:
        return conninfo_to_dict(strip_driver(url)).get("password")
    except psycopg.ProgrammingError:
        return None


def _with_timeout(url: str, timeout: int) -> str:
    params = conninfo_to_dict(strip_driver(url))
    params.setdefault("connect_timeout", str(max(2, timeout)))
    return make_conninfo(**params)
