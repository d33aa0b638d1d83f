"""No password reaches anything the project emits.

Imports run through the real Dagster job, in process, on an instance with its own storage and
compute logs, with a password in every database URL (the test server trusts its clients, so the
password is accepted and ignored), once well-formed and once malformed. Then everything emitted
is searched for the password: stdout and stderr, the instance's files (event log, run storage,
compute logs), every event serialised (materialisation metadata, failure texts), reports under
the data folder, every row of the control tables, the job's tags and exception texts.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from import_pipelines.components.build import build_profile_defs
from import_pipelines.components.profile import ImportProfile
from import_pipelines.db import connection
from import_pipelines.db.connect import DatabaseConnectionError, connect
from import_pipelines.demo.freescout import generate_freescout
from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.service_vault import migrate
from import_pipelines.settings import DATA_DIR_ENV
from import_pipelines.templates.loader import load_template

PASSWORD = "Zq7-secret-Pw"
FRAGMENTS = (PASSWORD, "secret-Pw", quote(PASSWORD, safe=""))


def with_password(conninfo: str, password: str) -> str:
    """``conninfo`` as a postgresql:// URL carrying ``password`` (host may be a socket folder)."""
    params = conninfo_to_dict(conninfo)
    host, port = params.get("host", ""), params.get("port")
    user = params.get("user", "postgres")
    if host.startswith("/"):
        return f"postgresql://{user}:{password}@/{params['dbname']}?host={quote(host)}" + (f"&port={port}" if port
                                                                                           else "")
    return f"postgresql://{user}:{password}@{host}:{port or 5432}/{params['dbname']}"


def malformed(conninfo: str) -> str:
    """A URL whose password holds a '%' that is not an escape: libpq would quote the fragment."""
    return with_password(conninfo, PASSWORD.replace("-", "%z", 1))


def leaks(text: str) -> list[str]:
    return [fragment for fragment in FRAGMENTS if fragment in text]


def everything_under(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in folder.rglob("*") if p.is_file())


def control_tables(url: str) -> str:
    with connection(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'import_control'")]
        return "\n".join(str(conn.execute(f"SELECT t::text FROM import_control.{t} AS t").fetchall()) for t in tables)


def run_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, source: str, target: str, run_config: dict | None = None
            ) -> tuple[dg.ExecuteInProcessResult, dg.JobDefinition, str]:
    monkeypatch.setenv("SECRET_SOURCE_URL", source)
    monkeypatch.setenv("SECRET_TARGET_URL", target)
    profile = ImportProfile(name="sec", template="freescout", source_url_env="SECRET_SOURCE_URL",
                            target_url_env="SECRET_TARGET_URL")
    defs = build_profile_defs(profile, load_template("freescout"), resources={
        "sec_source": PostgresDatabase(url=dg.EnvVar("SECRET_SOURCE_URL")),
        "sec_target": PostgresDatabase(url=dg.EnvVar("SECRET_TARGET_URL")), "sec_settings": ImportRunSettings()})
    job = defs.resolve_job_def("sec_import")
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
        events = serialize_value(list(instance.all_logs(result.run_id)))
    return result, job, events


def test_no_password_in_anything_emitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
                                         source_url: str, target_url: str) -> None:
    generate_freescout(source_url, customers=80)
    migrate(target_url)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    source, target = with_password(source_url, PASSWORD), with_password(target_url, PASSWORD)
    with connect(source) as conn:  # the password is in the URL and the server lets it through
        assert conn.info.password == PASSWORD

    emitted = []
    dry, job, events = run_job(tmp_path, monkeypatch, source=source, target=target,
                               run_config={"resources": {"sec_settings": {"config": {"dry_run": True}}}})
    assert dry.success
    emitted += [events, serialize_value(dry.all_events), str(job.tags)]
    real, _, events = run_job(tmp_path, monkeypatch, source=source, target=target)
    assert real.success
    emitted += [events, serialize_value(real.all_events)]
    metadata = [e.materialization.metadata for e in real.get_asset_materialization_events()]
    assert any("report" in m for m in [e.materialization.metadata for e in dry.get_asset_materialization_events()])
    emitted.append(str(metadata))

    # malformed URLs: the run fails at its first connection, saying which one and why
    for broken_source, broken_target in ((malformed(source_url), target), (source, malformed(target_url))):
        failed, job, events = run_job(tmp_path, monkeypatch, source=broken_source, target=broken_target)
        assert not failed.success
        [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
        error = failure.step_failure_data.error
        text = error.to_string()
        side = "target" if broken_target != target else "source"
        assert f"cannot connect to the {side} of profile sec" in text
        assert "contains a '%' that is not a percent-escape" in text
        emitted += [events, serialize_value(failed.all_events), text, str(job.tags)]

    out, err = capfd.readouterr()
    emitted += [out, err, everything_under(tmp_path), control_tables(target_url)]
    assert "sec_import" in "".join(emitted) and "created" in control_tables(target_url)  # the search saw real output
    for text in emitted:
        assert leaks(text) == [], leaks(text)


BAD_URLS = [
    "postgresql://postgres:{pw}%zz@127.0.0.1:5432/postgres",
    "postgresql://postgres:{pw}@127.0.0.1:notaport/postgres",
    "host=127.0.0.1 password='{pw}",
    "postgresql://postgres:{pw}@127.0.0.1:5432/postgres?sslmode=bogus",
    "postgresql://postgres:{pw}@[::1/db",
    "postgresql://postgres:{pw}@127.0.0.1:1/postgres",
    "postgresql://{pw}:{pw}@127.0.0.1:5432/no_such_database",
    "mysql://u:{pw}@h/db",
    "postgresql+psycopg2://postgres:%{pw}@127.0.0.1/x",
]


@pytest.mark.parametrize("template", BAD_URLS)
def test_connection_errors_name_the_connection_and_never_the_credentials(template: str) -> None:
    url = template.format(pw=PASSWORD)
    with pytest.raises(DatabaseConnectionError) as caught:
        connect(url, purpose="source of profile demo")
    text = "".join(traceback.format_exception(caught.value))
    assert str(caught.value).startswith("cannot connect to the source of profile demo")
    assert leaks(text) == [] and caught.value.__context__ is None and caught.value.__cause__ is None


def test_a_server_refusal_keeps_its_reason(pg_server: str) -> None:
    params = conninfo_to_dict(pg_server)
    url = make_conninfo(pg_server, dbname="ipt_no_such_database", password=PASSWORD)
    with pytest.raises(DatabaseConnectionError) as caught:
        connect(url, purpose="target of profile demo")
    assert 'database "ipt_no_such_database" does not exist' in str(caught.value)
    assert f"{params.get('host')}" in str(caught.value) and leaks(str(caught.value)) == []
