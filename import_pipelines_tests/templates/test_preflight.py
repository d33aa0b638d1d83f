"""Preflight: the whole template against real source and target schemas, before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from import_pipelines.cli import main as cli_main
from import_pipelines.components.build import build_profile_defs
from import_pipelines.components.profile import ImportProfile
from import_pipelines.db import connection
from import_pipelines.demo.freescout import generate_freescout
from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.service_vault import migrate
from import_pipelines.templates.loader import TEMPLATE_DIR, load_template, parse_template
from import_pipelines.templates.preflight import PreflightError, preflight

SOURCE_DDL = """
CREATE TABLE people (id bigint PRIMARY KEY, name text, company text, email text);
INSERT INTO people VALUES (1, 'Ann', 'Acme', 'ann@example.org');
"""


def entity(target: str, fields: dict[str, Any], *, table: str = "people", **extra: Any) -> dict[str, Any]:
    return {"target": target, "source_id": "external_id", "query": {"base": {"table": table, "alias": "p"}},
            "fields": {"external_id": "p.id", **fields}, **extra}


def test_every_problem_of_every_entity_is_reported_with_its_path(source_url: str, target_url: str) -> None:
    with connection(source_url) as conn:
        conn.execute(SOURCE_DDL)
        conn.commit()
    migrate(target_url)
    template = parse_template({"name": "probe", "source_system": "probe", "entities": {
        "fine": entity("accounts", {"name": "p.company"}),
        "not_a_column": entity("accounts", {"name": "p.company", "nam": "p.name"}),
        "no_table": entity("no_such_table", {"name": "p.name"}),
        "generated": entity("accounts", {"name": "p.company", "name_key": "p.name"}),
        "no_source_column": entity("accounts", {"name": "p.nope"}),
        "no_source_table": entity("accounts", {"name": "p.name"}, table="peeple"),
        "bad_where": entity("accounts", {"name": "p.name"}, query={"base": {"table": "people", "alias": "p"},
                                                                   "where": ["p.missing > 0"]}),
        "type_error": entity("accounts", {"name": {"expression": "lower(p.id)"}}),
        "unwritten": entity("agents", {"email": "p.email", "display_name": "p.name"}),
        "self_not_null": entity("tickets", {"subject": "p.name", "status": {"value": "open"},
                                            "opened_at": {"expression": "now()"}, "parent": "p.id"},
                                references={"customer_id": {"entity": "self_not_null", "field": "parent"}}),
    }})
    with pytest.raises(PreflightError) as caught:
        preflight(template, source_url=source_url, target_url=target_url, profile="probe", template_source="probe.yaml")
    problems = dict(caught.value.problems)
    assert "entities.fine" not in " ".join(problems)
    assert "'nam' is not a column of public.accounts" in problems["entities.not_a_column"]
    assert "public.no_such_table does not exist" in problems["entities.no_table"]
    assert "name_key" in problems["entities.generated"] and "computed column" in problems["entities.generated"]
    assert problems["entities.no_source_column.fields.name"] == "source: column p.nope does not exist"
    assert problems["entities.no_source_table.query.base.table"] == "source: table peeple does not exist"
    assert problems["entities.bad_where.query.where[0]"] == "source: column p.missing does not exist"
    assert problems["entities.type_error.fields.name"].startswith("source: function lower(bigint) does not exist")
    assert "requires role, is_active" in problems["entities.unwritten.fields"]
    assert ("points at entity 'self_not_null' (public.tickets), but foreign key tickets_customer_id_fkey of"
            " public.tickets.customer_id references public.customer_users") in problems["entities.self_not_null"]
    assert "probe.yaml: entities.no_table: target:" in str(caught.value)
    with connection(target_url) as conn:  # nothing was created on the target, not even the control schema
        assert conn.execute("SELECT to_regnamespace('import_control')").fetchone() == (None,)


def test_system_catalogue_tables_are_refused_even_through_a_view_free_name(source_url: str, target_url: str) -> None:
    migrate(target_url)
    # an unqualified pg_ name is refused by the model; a quoted schema-less catalogue view is found here
    template = parse_template({"name": "probe", "source_system": "probe", "entities": {
        "roles": {"target": "accounts", "source_id": "external_id",
                  "query": {"base": {"table": "tables", "alias": "t", "schema": "public"}},
                  "fields": {"external_id": "t.table_name", "name": "t.table_name"}}}})
    with pytest.raises(PreflightError) as caught:
        preflight(template, source_url=source_url, target_url=target_url, profile="probe", template_source="x.yaml")
    assert dict(caught.value.problems) == {"entities.roles.query.base.table": "source: table public.tables does not"
                                                                              " exist"}


def broken_freescout(tmp_path: Path) -> Path:
    """The FreeScout template with a source column that does not exist in its last entity."""
    data = yaml.safe_load((TEMPLATE_DIR / "freescout.yaml").read_text(encoding="utf-8"))
    assert list(data["entities"])[-1] == "time_entries"
    data["entities"]["time_entries"]["fields"]["minutes"] = {"column": "tl.time_spent_in_seconds"}
    path = tmp_path / "freescout_broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_a_template_with_an_error_in_its_last_entity_writes_nothing(
        monkeypatch: pytest.MonkeyPatch, source_url: str, target_url: str, tmp_path: Path) -> None:
    generate_freescout(source_url, customers=60)
    migrate(target_url)
    monkeypatch.setenv("PF_SOURCE_URL", source_url)
    monkeypatch.setenv("PF_TARGET_URL", target_url)
    path = broken_freescout(tmp_path)
    profile = ImportProfile(name="pf", template=str(path), source_url_env="PF_SOURCE_URL",
                            target_url_env="PF_TARGET_URL")
    defs = build_profile_defs(profile, load_template(path), template_source=str(path), resources={
        "pf_source": PostgresDatabase(url=dg.EnvVar("PF_SOURCE_URL")),
        "pf_target": PostgresDatabase(url=dg.EnvVar("PF_TARGET_URL")), "pf_settings": ImportRunSettings()})

    result = defs.resolve_job_def("pf_import").execute_in_process(raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "pf__preflight"
    message = failure.step_failure_data.error.cause.message
    assert f"{path}: entities.time_entries.fields.minutes: source: column tl.time_spent_in_seconds does not exist" \
        in message
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert started == {"pf__preflight"}  # no extract began
    with connection(target_url) as conn:
        for table in ("accounts", "customer_users", "agents", "tickets", "time_entries"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        assert conn.execute("SELECT to_regnamespace('import_control')").fetchone() == (None,)


def test_the_command_line_runs_the_preflight(monkeypatch: pytest.MonkeyPatch, source_url: str, target_url: str,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate_freescout(source_url, customers=20)
    migrate(target_url)
    monkeypatch.setenv("PF_SOURCE_URL", source_url)
    monkeypatch.setenv("PF_TARGET_URL", target_url)
    common = ["--source-url-env", "PF_SOURCE_URL", "--target-url-env", "PF_TARGET_URL"]
    assert cli_main(["preflight", "freescout", *common]) == 0
    assert "5 entities fit the source and the target" in capsys.readouterr().out
    path = broken_freescout(tmp_path)
    assert cli_main(["preflight", str(path), *common]) == 1
    assert "entities.time_entries.fields.minutes: source: column tl.time_spent_in_seconds does not exist" in \
        capsys.readouterr().err
