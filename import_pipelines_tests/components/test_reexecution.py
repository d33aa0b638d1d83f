"""A failed run re-executed from failure continues the same import.

The first run loads ``teams`` (whose parent references are deferred to the late seed) and fails
in ``members``' load; re-executed from failure in Dagster, the new run loads ``members`` and its
late seed resolves the references the first run deferred: the target and the audit end as an
uninterrupted run leaves them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import yaml

from import_pipelines.components.build import build_profile_defs
from import_pipelines.components.profile import ImportProfile
from import_pipelines.db import connection
from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.templates.loader import load_template

TEMPLATE = {
    "name": "org", "source_system": "hr",
    "entities": {
        "teams": {
            "target": "teams", "source_id": "external_id",
            "query": {"base": {"table": "src_teams", "alias": "t"}},
            "fields": {"external_id": "t.id", "name": "t.name", "parent_key": "t.parent_id"},
            "references": {"parent_id": {"entity": "teams", "field": "parent_key"}},
        },
        "members": {
            "target": "members", "source_id": "external_id",
            "query": {"base": {"table": "src_members", "alias": "m"}},
            "fields": {"external_id": "m.id", "email": "m.email", "team_key": "m.team_id"},
            "references": {"team_id": {"entity": "teams", "field": "team_key", "required": True}},
        },
    },
}
TEMPLATE_ENV = "REEXEC_TEMPLATE"
SOURCE_ENV, TARGET_ENV = "REEXEC_SOURCE_URL", "REEXEC_TARGET_URL"
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def reexecution_job() -> dg.JobDefinition:
    """The ``org`` profile's job (module level, so Dagster can reconstruct it for a re-execution)."""
    path = os.environ[TEMPLATE_ENV]
    profile = ImportProfile(name="org", template=path, source_url_env=SOURCE_ENV, target_url_env=TARGET_ENV)
    defs = build_profile_defs(profile, load_template(path), resources={
        "org_source": PostgresDatabase(url=dg.EnvVar(SOURCE_ENV)),
        "org_target": PostgresDatabase(url=dg.EnvVar(TARGET_ENV)), "org_settings": ImportRunSettings()})
    return defs.resolve_job_def("org_import")


def make_source(url: str) -> None:
    with connection(url) as conn:
        conn.execute("CREATE TABLE src_teams (id int PRIMARY KEY, name text, parent_id int)")
        # children before their parents: every parent reference waits for the late seed
        conn.execute("INSERT INTO src_teams SELECT g, 'team ' || g, CASE WHEN g < 40 THEN g + 1 END"
                     " FROM generate_series(1, 40) AS g")
        conn.execute("CREATE TABLE src_members (id int PRIMARY KEY, email text, team_id int)")
        conn.execute("INSERT INTO src_members SELECT g, 'm' || g || '@example.org', g % 40 + 1"
                     " FROM generate_series(1, 300) AS g")
        conn.commit()


def make_target(url: str) -> None:
    with connection(url) as conn:
        conn.execute("CREATE TABLE teams (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                     " source_system text NOT NULL, external_id text NOT NULL, name text NOT NULL,"
                     " parent_id bigint REFERENCES teams (id), UNIQUE (source_system, external_id))")
        conn.execute("CREATE TABLE members (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                     " source_system text NOT NULL, external_id text NOT NULL, email text,"
                     " team_id bigint NOT NULL REFERENCES teams (id), UNIQUE (source_system, external_id))")
        conn.commit()


def content(url: str) -> dict[str, list[tuple]]:
    with connection(url) as conn:
        return {
            "teams": conn.execute("SELECT t.external_id, t.name, p.external_id FROM teams t"
                                  " LEFT JOIN teams p ON p.id = t.parent_id ORDER BY 1").fetchall(),
            "members": conn.execute("SELECT m.external_id, m.email, t.external_id FROM members m"
                                    " JOIN teams t ON t.id = m.team_id ORDER BY 1").fetchall(),
        }


def audit(url: str) -> dict[tuple[str, str], int]:
    """Audit records by entity and action, over every run."""
    with connection(url) as conn:
        return {(e, a): n for e, a, n in conn.execute(
            "SELECT entity, action, count(*) FROM import_control.import_records GROUP BY 1, 2").fetchall()}


def control_state(url: str) -> tuple[int, int, list[str]]:
    with connection(url) as conn:
        pending = conn.execute("SELECT count(*) FROM import_control.pending_references").fetchone()[0]
        summaries = conn.execute("SELECT coalesce(sum(source_rows), 0) FROM import_control.run_summaries"
                                 ).fetchone()[0]
        staging = [r[0] for r in conn.execute("SELECT name FROM import_control.staging_tables ORDER BY 1")]
    return pending, summaries, staging


def test_a_run_failed_after_its_first_entity_continues_when_re_executed_from_failure(
        tmp_path: Path, monkeypatch, new_database: Callable[[str], str]) -> None:
    template = tmp_path / "org.yaml"
    template.write_text(yaml.safe_dump(TEMPLATE))
    source, target, reference = new_database("source"), new_database("target"), new_database("reference")
    make_source(source)
    for url in (target, reference):
        make_target(url)
    monkeypatch.setenv(TEMPLATE_ENV, str(template))
    monkeypatch.setenv(SOURCE_ENV, source)
    job = dg.reconstructable(reexecution_job)
    (tmp_path / "dagster").mkdir()

    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        monkeypatch.setenv(TARGET_ENV, reference)
        with dg.execute_job(job, instance, run_config=IN_PROCESS) as uninterrupted:
            assert uninterrupted.success

        monkeypatch.setenv(TARGET_ENV, target)
        with connection(target) as conn:  # members cannot be written: the first run fails in their load
            conn.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                         " $$ BEGIN RAISE EXCEPTION 'members is being maintained'; END $$")
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON members EXECUTE FUNCTION refuse()")
            conn.execute("ALTER TABLE members ENABLE ALWAYS TRIGGER refuse")
            conn.commit()
        with dg.execute_job(job, instance, run_config=IN_PROCESS, raise_on_error=False) as first:
            assert not first.success
            failed = {e.step_key for e in first.all_events if e.event_type_value == "STEP_FAILURE"}
            assert failed == {"org__members.org__members__load"}
            attempts = [e for e in first.all_events if e.event_type_value == "STEP_START"
                        and e.step_key == "org__members.org__members__load"]
            assert len(attempts) == 1  # not a transient error: not retried
            first_id = first.run_id
        with connection(target) as conn:
            assert conn.execute("SELECT count(*), count(parent_id) FROM teams").fetchone() == (40, 0)
            assert conn.execute("SELECT count(*) FROM members").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM import_control.pending_references").fetchone()[0] == 39
            conn.execute("DROP TRIGGER refuse ON members")
            conn.commit()

        with dg.execute_job(job, instance, run_config=IN_PROCESS,
                            reexecution_options=dg.ReexecutionOptions.from_failure(first_id, instance)) as second:
            assert second.success
            started = {e.step_key for e in second.all_events if e.event_type_value == "STEP_START"}
            assert "org__members.org__members__load" in started and not any(s.startswith("org__teams.") for s in started)
            assert second.dagster_run.root_run_id == first_id
            # the reconciliation of members counts what the first run counted and staged
            checks = {(e.asset_check_evaluation_data.asset_key.path[1], e.asset_check_evaluation_data.check_name):
                      e.asset_check_evaluation_data.passed for e in second.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION"}
            assert checks[("members", "reconciliation")] and checks[("members", "references_resolved")]

    assert content(target) == content(reference)
    assert content(target)["teams"][0] == ("1", "team 1", "2")  # the deferred parents were resolved
    assert audit(target) == audit(reference)
    pending, summaries, staging = control_state(target)
    assert (pending, staging) == (0, [])  # no deferred reference left, no staging table left behind
    assert summaries == control_state(reference)[1] == 340
