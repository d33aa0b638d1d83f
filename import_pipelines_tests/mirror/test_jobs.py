"""The Dagster jobs and the command line, run for real against the test databases."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from import_pipelines.defs.mirror.definitions import defs
from import_pipelines.mirror.cli import main
from import_pipelines.settings import PROJECT_ROOT, SOURCE_URL_ENV, TARGET_URL_ENV
from import_pipelines_tests.mirror.schema import OVERRIDES, content, counts, create_schema


@pytest.fixture
def overrides_file(tmp_path: Path) -> str:
    path = tmp_path / "natural_keys.yaml"
    path.write_text("".join(f"{table}: [{', '.join(columns)}]\n" for table, columns in OVERRIDES.items()))
    return str(path)


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    found = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            found[mat.asset_key.path[-1]] = {key: value.value for key, value in mat.metadata.items()}
    return found


def test_definitions_load_cheaply() -> None:
    assert {job.name for job in defs.resolve_all_job_defs()} == {"mirror_database", "export_archive",
                                                                 "import_archive"}
    probe = ("import sys, import_pipelines.defs.mirror.definitions; "
             "print(any(m.startswith('import_pipelines.mirror') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the machinery loads inside the ops


def test_mirror_job_materializes_each_table(seeded_source: str, empty_target: str, overrides_file: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_TEST_SOURCE", seeded_source)
    monkeypatch.setenv("MIRROR_TEST_TARGET", empty_target)
    job = defs.get_job_def("mirror_database")
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance, run_config={"ops": {"mirror_tables": {"config": {
        "source_url_env": "MIRROR_TEST_SOURCE", "target_url_env": "MIRROR_TEST_TARGET", "mode": "upsert",
        "overrides": overrides_file}}}})

    assert result.success
    assert content(empty_target) == content(seeded_source)
    tables = materializations(result)
    source_counts = counts(seeded_source)
    assert set(tables) == set(source_counts)
    assert tables["users"]["dagster/row_count"] == 20 and tables["users"]["created"] == 20
    assert tables["users"]["failed"] == 0 and tables["users"]["rows_per_s"] > 0
    output = result.output_for_node("mirror_tables")
    assert output["rows"] == sum(source_counts.values()) and output["late_seeded"] == 11
    logs = " ".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert "users: 20 rows" in logs
    assert seeded_source not in logs and empty_target not in logs  # URLs are secrets


def test_mirror_job_fails_clearly(seeded_source: str, empty_target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_TEST_SOURCE", seeded_source)
    monkeypatch.delenv("MIRROR_TEST_MISSING", raising=False)
    job = defs.get_job_def("mirror_database")
    missing = job.execute_in_process(raise_on_error=False, run_config={"ops": {"mirror_tables": {"config": {
        "source_url_env": "MIRROR_TEST_SOURCE", "target_url_env": "MIRROR_TEST_MISSING"}}}})
    assert not missing.success
    assert "MIRROR_TEST_MISSING is not set" in str(missing.failure_data_for_node("mirror_tables").error)

    monkeypatch.setenv("MIRROR_TEST_TARGET", empty_target)
    no_key = job.execute_in_process(raise_on_error=False, run_config={"ops": {"mirror_tables": {"config": {
        "source_url_env": "MIRROR_TEST_SOURCE", "target_url_env": "MIRROR_TEST_TARGET"}}}})
    assert "has no natural key" in str(no_key.failure_data_for_node("mirror_tables").error)


def test_archive_jobs_round_trip(seeded_source: str, empty_target: str, overrides_file: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SOURCE_URL_ENV, seeded_source)
    monkeypatch.setenv(TARGET_URL_ENV, empty_target)
    path = str(tmp_path / "dump.tar.gz")
    exported = defs.get_job_def("export_archive").execute_in_process(run_config={"ops": {"write_archive": {
        "config": {"path": path, "overrides": overrides_file}}}})
    assert exported.success
    assert materializations(exported)["mirror_archive"]["dagster/row_count"] == sum(counts(seeded_source).values())

    imported = defs.get_job_def("import_archive").execute_in_process(run_config={"ops": {"load_archive": {
        "config": {"path": path, "mode": "create_only"}}}})
    assert imported.success
    assert content(empty_target) == content(seeded_source)
    assert materializations(imported)["projects"]["created"] == 6


def test_command_line(seeded_source: str, empty_target: str, new_database: Callable[[str], str],
                      overrides_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(SOURCE_URL_ENV, seeded_source)
    monkeypatch.setenv(TARGET_URL_ENV, empty_target)

    assert main(["mirror", "--mode", "create_only", "--tables", "domains,users,instructors",
                 "--batch-rows", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 3 + 20 + 5 and report["mode"] == "create_only"
    assert {t["table"]: t["batches"] for t in report["tables"]}["users"] == 4

    archive = str(tmp_path / "cli.tar.gz")
    assert main(["export", archive, "--overrides", overrides_file]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert {t["table"] for t in exported["tables"]} == set(counts(seeded_source))

    third = new_database("third")
    create_schema(third, sequence_offset=777)
    assert main(["import", archive, "--target-url", third]) == 0
    assert json.loads(capsys.readouterr().out)["error_count"] == 0
    assert content(third) == content(seeded_source)

    # refusals exit with 2 and say why on stderr, without a traceback
    assert main(["mirror", "--tables", "audit_notes"]) == 2
    assert "has no natural key" in capsys.readouterr().err
