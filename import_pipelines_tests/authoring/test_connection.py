"""Testing a connection: what a reachable server reports, and a clear message for each failure.

DNS, refused, NOLOGIN, missing role or database and missing privileges are provoked on the real
server. A server that requires SSL, or rejects a password, cannot be had from the test server (no
SSL, trust authentication), so those answers come from a minimal PostgreSQL front end on
127.0.0.1 that speaks just enough of the wire protocol: libpq itself reads them and raises the
error the mapping has to recognise.
"""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from import_pipelines.authoring.connection import check_connection, describe_url
from import_pipelines.cli import main
from import_pipelines.db import connection

SECRET = "pw-must-not-leak"


def with_params(url: str, **params: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(url), **params})


@pytest.fixture
def schema_url(target_url: str) -> str:
    with connection(target_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int); CREATE SCHEMA hidden;"
                     " CREATE TABLE hidden.c (id int)")
    return target_url


@pytest.fixture
def role(schema_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: ``role("NOLOGIN")`` creates a role and returns the URL that logs in as it."""
    made: list[str] = []

    def make(options: str) -> str:
        name = f"ipt_role_{uuid.uuid4().hex[:8]}"
        with connection(schema_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {name} {options}")
        made.append(name)
        return with_params(schema_url, user=name, password=SECRET)

    yield make
    with connection(schema_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


def test_a_reachable_server(schema_url: str) -> None:
    report = check_connection(schema_url)
    assert report.ok and report.failure is None
    assert report.server_version and report.server_version[:2].isdigit()
    assert report.read_only is False and report.in_recovery is False
    access = {a.schema: (a.tables, a.readable) for a in report.access}
    assert access == {"public": (2, 2), "hidden": (1, 1)}
    assert "may read 2 of 2 tables" in report.render_text()


def test_read_only_by_the_database_setting(schema_url: str) -> None:
    with connection(schema_url, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    report = check_connection(schema_url)
    assert report.ok and report.read_only is True
    assert "session read-only by the server's settings: yes" in report.render_text()


def test_what_a_role_without_privileges_may_read(role, schema_url: str) -> None:
    url = role("LOGIN")
    report = check_connection(url)
    assert not report.ok and report.failure == "no_privilege"
    assert "may read none of the 3 tables" in report.message
    with connection(schema_url, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON a TO {conninfo_to_dict(url)['user']}")
    granted = check_connection(url)
    assert granted.ok and {a.schema: a.readable for a in granted.access} == {"public": 1, "hidden": 0}


def test_no_connect_privilege(role, schema_url: str) -> None:
    url = role("LOGIN")
    with connection(schema_url, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f'REVOKE CONNECT ON DATABASE "{database}" FROM PUBLIC')
    report = check_connection(url)
    assert report.failure == "no_privilege" and "CONNECT privilege" in report.message


def test_authentication_failures(role, schema_url: str) -> None:
    report = check_connection(role("NOLOGIN"))
    assert report.failure == "authentication" and "NOLOGIN" in report.message
    unknown = check_connection(with_params(schema_url, user=f"ipt_nobody_{uuid.uuid4().hex[:6]}", password=SECRET))
    assert unknown.failure == "authentication" and "user name" in unknown.message
    for outcome in (report, unknown):
        assert SECRET not in outcome.message and SECRET not in outcome.render_text() and SECRET not in outcome.target


def test_missing_database(schema_url: str) -> None:
    report = check_connection(with_params(schema_url, dbname="ipt_no_such_database"))
    assert report.failure == "no_database" and "ipt_no_such_database" in report.message


def test_dns_and_refused() -> None:
    dns = check_connection(f"postgresql://someone:{SECRET}@no-such-host.invalid:5432/db")
    assert dns.failure == "dns" and "DNS" in dns.message
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = check_connection(f"postgresql://someone:{SECRET}@127.0.0.1:{port}/db")
    assert refused.failure == "refused" and f"127.0.0.1:{port}" in refused.message
    assert SECRET not in dns.render_text() + refused.render_text()


def _error_response(sqlstate: str, message: str) -> bytes:
    fields = b"".join(code + text.encode() + b"\0" for code, text in
                      ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))) + b"\0"
    return b"E" + struct.pack("!i", 4 + len(fields)) + fields


@contextmanager
def front_end(answer: Callable[[bytes], bytes]) -> Iterator[int]:
    """A listener on 127.0.0.1 that answers each connection's first message with ``answer(message)``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)

    def serve() -> None:
        for _ in range(4):  # libpq may try twice (with and without SSL); a few connections at most
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with client:
                client.settimeout(5)
                for _ in range(3):  # an SSL request answered 'N' is followed by the startup message
                    header = client.recv(4)
                    if len(header) < 4:
                        break
                    body = client.recv(struct.unpack("!i", header)[0] - 4)
                    reply = answer(body)
                    client.sendall(reply)
                    if reply != b"N":
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() still waiting for a connection
        listener.close()
        thread.join(timeout=10)


SSL_REQUEST = struct.pack("!i", 80877103)


def test_ssl_required_by_the_client() -> None:
    # the server answers the SSL request with 'N': it does not speak SSL
    with front_end(lambda body: b"N" if body == SSL_REQUEST else b"") as port:
        report = check_connection(f"postgresql://someone:{SECRET}@127.0.0.1:{port}/db?sslmode=require&gssencmode=disable")
    assert report.failure == "ssl_required" and "sslmode" in report.message


def test_ssl_required_by_the_server() -> None:
    refusal = _error_response("28000", 'no pg_hba.conf entry for host "127.0.0.1", user "someone", database "db",'
                                       " no encryption")
    with front_end(lambda body: b"N" if body == SSL_REQUEST else refusal) as port:
        report = check_connection(f"postgresql://someone:{SECRET}@127.0.0.1:{port}/db?sslmode=disable&gssencmode=disable")
    assert report.failure == "ssl_required" and "sslmode=require" in report.message


def test_wrong_password() -> None:
    refusal = _error_response("28P01", 'password authentication failed for user "someone"')
    with front_end(lambda body: b"N" if body == SSL_REQUEST else refusal) as port:
        report = check_connection(f"postgresql://someone:{SECRET}@127.0.0.1:{port}/db?gssencmode=disable")
    assert report.failure == "authentication" and "check the password" in report.message
    assert SECRET not in report.render_text() and SECRET not in str(report.to_json())


def test_describe_url_never_has_the_password() -> None:
    assert describe_url(f"postgresql+psycopg2://ann:{SECRET}@db.example:6432/crm") == "ann@db.example:6432/crm"
    assert SECRET not in describe_url(f"host=db user=ann password={SECRET} dbname=crm")


def test_command_line(schema_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("IPT_TEST_CONNECTION", with_params(schema_url, password=SECRET))
    assert main(["test-connection", "--env", "IPT_TEST_CONNECTION"]) == 0
    out = capsys.readouterr().out
    assert "reachable" in out and SECRET not in out
    monkeypatch.setenv("IPT_TEST_CONNECTION", with_params(schema_url, dbname="ipt_no_such_database", password=SECRET))
    assert main(["test-connection", "--env", "IPT_TEST_CONNECTION", "--json"]) == 1
    out = capsys.readouterr().out
    assert '"failure": "no_database"' in out and SECRET not in out
