"""The folder and sheet sensors of records profiles, evaluated tick by tick."""

from __future__ import annotations

import functools
import hashlib
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from import_pipelines.components.build import build_profile_defs
from import_pipelines.components.profile import ImportProfile
from import_pipelines.components.sensors import scan_folder
from import_pipelines.db import connection
from import_pipelines.mapping.resource import FieldMapper
from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.service_vault.migrate import migrate
from import_pipelines.templates.loader import load_template, template_path
from import_pipelines_tests.sources import contacts
from import_pipelines_tests.sources.conftest import google, google_key, sheets  # noqa: F401 - fixtures
from import_pipelines_tests.sources.fake_google import FakeSpreadsheet, FakeWorksheet

TARGET_ENV = "IMPORT_PIPELINES_TEST_SENSOR_TARGET_URL"
SHEET = "https://docs.google.com/spreadsheets/d/1Watched/edit"


def profile_defs(**attributes) -> dg.Definitions:
    profile = ImportProfile(name="inbox", template="contacts", target_url_env=TARGET_ENV, **attributes)
    return build_profile_defs(profile, load_template(template_path("contacts")), resources={
        "inbox_target": PostgresDatabase(url=dg.EnvVar(TARGET_ENV)), "inbox_settings": ImportRunSettings(),
        "inbox_field_mapper": FieldMapper(use_ai=False, overrides={"score": "custom", "vip": "custom"})})


def tick(sensor: dg.SensorDefinition, cursor: str | None, instance: dg.DagsterInstance | None = None):
    context = dg.build_sensor_context(cursor=cursor, instance=instance, sensor_name=sensor.name)
    return sensor.evaluate_tick(context)


def aged(path: Path, seconds: float = 120) -> Path:
    """``path`` as a file last written ``seconds`` ago."""
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_a_new_file_starts_one_run_keyed_by_its_content_and_a_file_seen_before_none(tmp_path: Path, target_url: str,
                                                                                    monkeypatch) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    defs = profile_defs(source={"kind": "file"}, watch_folder=str(inbox))
    sensor = defs.resolve_sensor_def("inbox_folder")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED and sensor.job_name == "inbox_import"
    assert tick(sensor, None).run_requests == []  # an empty folder

    path = aged(contacts.write_csv(inbox / "contacts.csv", encoding="utf-8", delimiter=","))
    (inbox / "~$contacts.xlsx").write_bytes(b"lock")  # an open workbook's lock file: never imported
    (inbox / "readme.md").write_text("not a data file")
    first = tick(sensor, None)
    (request,) = first.run_requests
    assert request.run_key == hashlib.sha256(path.read_bytes()).hexdigest()
    assert request.run_config == {"resources": {"inbox_settings": {"config": {"source_path": str(path)}}}}
    assert tick(sensor, first.cursor).run_requests == []  # seen before: nothing, and the file is not read again

    # the run the request starts: the profile's job, the file's path from the run config
    migrate(target_url)
    monkeypatch.setenv(TARGET_ENV, target_url)
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        result = defs.resolve_job_def("inbox_import").execute_in_process(
            run_config=request.run_config, instance=instance,
            tags={"dagster/sensor_name": sensor.name, "dagster/run_key": request.run_key})
        assert result.success
        # the mapping used, as a table, in the run's metadata
        (materialization,) = [e.materialization for e in result.get_asset_materialization_events()
                              if e.asset_key.path[-1] == "contacts"]
        table = materialization.metadata["mapping"].value
        assert "| email | email | 1.00 | heuristic |" in table and "| vip | custom |" in table
        assert materialization.metadata["mapping_method"].value == "heuristic"
        # the same content under another name: the sensor already ran it
        (inbox / "copy of contacts.csv").write_bytes(path.read_bytes())
        aged(inbox / "copy of contacts.csv")
        copied = tick(sensor, first.cursor, instance)
        assert copied.run_requests == []
    with connection(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 200
        assert conn.execute("SELECT source_ref FROM import_control.import_records WHERE source_id = '5001'"
                            ).fetchone() == ("contacts.csv line 2",)

    # the same file changed in place is a new file
    with path.open("a", encoding="utf-8") as handle:
        handle.write("9999,Late,Comer,late@example.org,,,,,,,,\n")
    aged(path)
    (changed,) = tick(sensor, copied.cursor).run_requests
    assert changed.run_key == hashlib.sha256(path.read_bytes()).hexdigest() != request.run_key


def test_a_file_still_being_written_waits_for_the_next_tick(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sensor = profile_defs(source={"kind": "file"}, watch_folder=str(inbox)).resolve_sensor_def("inbox_folder")
    growing = inbox / "export.csv"
    growing.write_text("Name,Email\n")
    first = tick(sensor, None)
    assert first.run_requests == []  # written a moment ago: its size is kept in the cursor
    with growing.open("a") as handle:
        handle.write("Ada Lovelace,ada@example.org\n")
    second = tick(sensor, first.cursor)
    assert second.run_requests == []  # still growing
    third = tick(sensor, second.cursor)
    assert [r.run_key for r in third.run_requests] == [hashlib.sha256(growing.read_bytes()).hexdigest()]


def test_scan_folder_keeps_the_last_seen_size_and_a_finished_file_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("[]")
    ready, cursor = scan_folder(tmp_path, patterns=["*.json"], cursor=None, settle_s=60)
    assert ready == [] and cursor == f'{{"a.json":[2,{path.stat().st_mtime_ns},null]}}'
    ready, cursor = scan_folder(tmp_path, patterns=["*.json"], cursor=cursor, settle_s=60)
    assert ready == [(path, hashlib.sha256(b"[]").hexdigest())] and '"a.json":[2,' in cursor
    path.unlink()
    assert scan_folder(tmp_path, patterns=["*.json"], cursor=cursor) == ([], "{}")  # a file gone is forgotten


def test_the_sheet_sensor_starts_a_run_when_the_sheet_changes(google, monkeypatch) -> None:  # noqa: F811
    import import_pipelines.sources.sheets as sheet_module

    monkeypatch.setattr(sheet_module, "sheets_client", functools.partial(sheet_module.sheets_client, adapter=google))
    spreadsheet = google.add(FakeSpreadsheet(key="1Watched", title="Leads", worksheets=[
        FakeWorksheet(title="Contacts", rows=contacts.sheet_rows(5))], modified_time="2024-03-01T10:00:00.000Z"))
    sensor = profile_defs(source={"kind": "sheet", "spreadsheet": SHEET,
                                  "credentials_env": "IMPORT_PIPELINES_TEST_GOOGLE_KEY"},
                          watch_sheet=True).resolve_sensor_def("inbox_sheet")
    first = tick(sensor, None)
    assert [r.run_key for r in first.run_requests] == ["1Watched@2024-03-01T10:00:00.000Z"]
    assert tick(sensor, first.cursor).run_requests == []
    spreadsheet.modified_time = "2024-03-02T08:30:00.000Z"
    assert [r.run_key for r in tick(sensor, first.cursor).run_requests] == ["1Watched@2024-03-02T08:30:00.000Z"]
    assert any("drive/v3/files/1Watched" in url for _, url in google.requests)


def test_a_watch_that_does_not_fit_the_source_is_refused() -> None:
    with pytest.raises(ValueError, match="watch_folder needs a file source"):
        ImportProfile(name="p", template="contacts", watch_folder="in", source={"kind": "push"})
    with pytest.raises(ValueError, match="watch_sheet needs a sheet source"):
        ImportProfile(name="p", template="contacts", watch_sheet=True, source={"kind": "file"})
