"""Bulk pushes: the profile's Dagster job with the records in its run config, launched in process, by the
command line in process, and by the command line through a running webserver's GraphQL API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from import_pipelines.components.build import build_profile_defs
from import_pipelines.components.profile import ImportProfile
from import_pipelines.db import connection
from import_pipelines.db.connect import sqlalchemy_url
from import_pipelines.mapping.resource import FieldMapper
from import_pipelines.push import BulkPush, push_run_config
from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.service_vault.migrate import migrate
from import_pipelines.settings import PROJECT_ROOT
from import_pipelines.templates.loader import load_template, template_path
from import_pipelines_tests.pipeline.test_contacts import pushed_contacts

TARGET_ENV = "IMPORT_PIPELINES_TEST_PUSH_TARGET_URL"


@pytest.fixture
def target(target_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    migrate(target_url)
    monkeypatch.setenv(TARGET_ENV, target_url)
    return target_url


def push_job() -> dg.JobDefinition:
    profile = ImportProfile(name="crm_push", template="contacts", target_url_env=TARGET_ENV, source={"kind": "push"},
                            mode="create_only")
    defs = build_profile_defs(profile, load_template(template_path("contacts")), resources={
        "crm_push_target": PostgresDatabase(url=dg.EnvVar(TARGET_ENV)), "crm_push_settings": ImportRunSettings(),
        "crm_push_field_mapper": FieldMapper(use_ai=False), "crm_push_push": BulkPush()})
    return defs.resolve_job_def("crm_push_import")


def counts(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "contacts"]
    return {k: v.value for k, v in event.materialization.metadata.items()
            if k in ("created", "updated", "unchanged", "skipped", "failed") and v.value}


def plain_contacts(count: int) -> list[dict[str, Any]]:
    """The pushed contacts without the two columns no template field fits (they would need a mapping decision)."""
    return [{k: v for k, v in row.items() if k not in ("score", "vip")} for row in pushed_contacts(count)]


def test_the_push_job_loads_the_records_of_its_run_config(target: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORT_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    job = push_job()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        body = {"contacts": pushed_contacts(), "external_id": "batch-7"}
        config = push_run_config("crm_push", body)
        config["resources"]["crm_push_field_mapper"] = {"config": {"overrides": {"score": "custom", "vip": "custom"}}}
        first = job.execute_in_process(run_config=config, instance=instance)
        assert counts(first) == {"created": 200}
        with connection(target) as conn:
            assert conn.execute("SELECT source_ref FROM import_control.import_records WHERE source_id = '5003'"
                                ).fetchone() == ("push batch-7 record 3",)
            assert conn.execute("SELECT custom_fields FROM customer_users WHERE external_id = '5003'").fetchone() == (
                {"score": "3.75", "vip": "false"},)

        # the same people again, one with a new city, under the profile's mode (create_only: skip them)
        changed = plain_contacts(3)
        changed[1]["city"] = "Bergen"
        skipped = job.execute_in_process(run_config=push_run_config("crm_push", {"contacts": changed}),
                                         instance=instance)
        assert counts(skipped) == {"skipped": 3}
        # duplicate_strategy update, matched on the email alone (the external ids are left out)
        for row in changed:
            del row["external_id"]
        updated = job.execute_in_process(run_config=push_run_config("crm_push", {
            "contacts": changed, "duplicate_strategy": "update", "duplicate_match_fields": ["email"]}), instance=instance)
        assert counts(updated) == {"updated": 1, "unchanged": 2} or counts(updated) == {"updated": 3}
        with connection(target) as conn:
            assert conn.execute("SELECT count(*), count(*) FILTER (WHERE city = 'Bergen') FROM customer_users"
                                ).fetchone() == (200, 1)
        # create_new: every record a new row
        copies = job.execute_in_process(run_config=push_run_config("crm_push", {
            "contacts": changed[:2], "duplicate_strategy": "create_new"}), instance=instance)
        assert counts(copies) == {"created": 2}
        # a record that fails: its error in import_errors and the run's error report, named in the metadata
        broken = job.execute_in_process(run_config=push_run_config("crm_push", {
            "contacts": [{"email": "broken@", "first_name": "Bo"}], "external_id": "batch-8"}), instance=instance)
        (event,) = [e for e in broken.get_asset_materialization_events() if e.asset_key.path[-1] == "contacts"]
        report = event.materialization.metadata["error_report"].value
        assert Path(report).read_text().splitlines()[1].startswith("push batch-8 record 1,1,email,invalid_email,")


def test_a_push_of_the_wrong_shape_is_refused_before_launching() -> None:
    with pytest.raises(ValueError, match="unknown key records in the push"):
        push_run_config("p", {"records": []})
    with pytest.raises(ValueError, match="\"contacts\" must be a non-empty list"):
        push_run_config("p", {"contacts": {}})
    with pytest.raises(ValueError, match="duplicate_strategy 'merge' is not one of skip, update, create_new"):
        push_run_config("p", {"contacts": [{"email": "a@b.cd"}], "duplicate_strategy": "merge"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def project_env(target: str, new_database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The code location's environment: this test's target and a Dagster home of its own."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")  # the project's queue, launcher and storage
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPORT_PIPELINES_", "DAGSTER_"))}
    env.update({"IMPORT_PIPELINES_TARGET_URL": target, "IMPORT_PIPELINES_SOURCE_URL": new_database("source"),
                "IMPORT_PIPELINES_DAGSTER_PG_URL": sqlalchemy_url(new_database("dagster")), "DAGSTER_HOME": str(home),
                "IMPORT_PIPELINES_DATA_DIR": str(tmp_path / "data")})
    # this process opens the same instance to look at the runs
    monkeypatch.setenv("IMPORT_PIPELINES_DAGSTER_PG_URL", env["IMPORT_PIPELINES_DAGSTER_PG_URL"])
    return env


def push_command(body: dict[str, Any], path: Path, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    path.write_text(json.dumps(body))
    return subprocess.run([sys.executable, "-m", "import_pipelines", "push", str(path), *extra], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=240)


def test_the_command_runs_a_push_in_process_and_prints_its_run_id_first(project_env: dict[str, str], target: str,
                                                                        tmp_path: Path) -> None:
    done = push_command({"contacts": plain_contacts(20), "external_id": "cli-1"}, tmp_path / "push.json",
                        env=project_env)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.splitlines()[0]
    with dg.DagsterInstance.from_config(project_env["DAGSTER_HOME"]) as instance:
        run = instance.get_run_by_id(run_id)
        assert run.job_name == "contacts_api_import" and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["import_pipelines/push"] == "cli-1"
    with connection(target) as conn:
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 20
        assert conn.execute("SELECT DISTINCT run_id FROM import_control.import_records").fetchall() == [(run_id,)]
    bad = push_command({"contacts": []}, tmp_path / "empty.json", env=project_env)
    assert bad.returncode == 2 and "holds no records" in bad.stderr


@pytest.fixture
def webserver(project_env: dict[str, str]) -> Iterator[str]:
    """``dagster dev`` (the webserver and the daemon that takes runs off the queue) on a free port; its URL."""
    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml",
                                "-h", "127.0.0.1", "-p", str(port)], cwd=PROJECT_ROOT, env=project_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                import requests

                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(1)
        else:
            raise AssertionError("dagster-webserver did not start")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the webserver, the daemon, their code servers
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_the_command_submits_a_push_through_the_graphql_api(webserver: str, project_env: dict[str, str],
                                                            target: str, tmp_path: Path) -> None:
    done = push_command({"contacts": plain_contacts(30), "duplicate_strategy": "update", "external_id": "gql-9"},
                        tmp_path / "push.json", "--url", webserver, "--wait", env=project_env)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.splitlines()[0]
    assert f"contacts_api_import {run_id}: SUCCESS" in done.stderr
    with connection(target) as conn:
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 30
        assert conn.execute("SELECT DISTINCT run_id, source_ref LIKE 'push gql-9 record %' FROM"
                            " import_control.import_records").fetchall() == [(run_id, True)]
