"""The airtable_cases template end to end: the real pyairtable client against the fake Airtable, the
profile's Dagster job in process, a real PostgreSQL target with the enforcement schema.

Every fake is started through the ``running`` fixture, which fails the test if any second saw more
than 5 requests of one base at the fake.
"""

from __future__ import annotations

import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from import_pipelines.components.build import build_profile_defs
from import_pipelines.components.profile import ImportProfile
from import_pipelines.control.cursors import read_cursor
from import_pipelines.db import connect, connection
from import_pipelines.demo.airtable_server import (CASES_EPOCH, DEMO_BASE, FakeAirtable, FakeRecord, case_fields,
                                                   case_id, cases_table, notice_id, notices_table)
from import_pipelines.demo.fake_http import Answer, Request
from import_pipelines.enforcement import migrate
from import_pipelines.mapping.resource import FieldMapper
from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.settings import DATA_DIR_ENV, PROJECT_ROOT
from import_pipelines.templates.loader import load_template
from import_pipelines_tests.components.test_secrets import control_tables, everything_under
from import_pipelines_tests.sources.conftest import running  # noqa: F401  (the polite-fake fixture)

TOKEN = "patSyncT3st.fedcba9876543210"
TOKEN_ENV = "IMPORT_PIPELINES_TEST_AIRTABLE_TOKEN"
TARGET_ENV = "IMPORT_PIPELINES_TEST_ENFORCEMENT_URL"
QUICK_RETRIES = {"rate_limit_penalty_s": 0.2, "backoff_s": 0.05, "backoff_max_s": 1.0, "jitter_s": 0.05}
ENTITIES = ("offenders", "cases", "notices")


@dataclass
class Run:
    """One execution of the profile's job: its result, its counts per entity and its log lines."""

    result: dg.ExecuteInProcessResult
    counts: dict[str, dict[str, Any]]
    logs: list[str]
    events: str = ""
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    def logged(self, text: str) -> list[str]:
        return [line for line in self.logs if text in line]


@pytest.fixture
def target(target_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    migrate(target_url)
    monkeypatch.setenv(TARGET_ENV, target_url)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return target_url


@pytest.fixture
def instance(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def enforcement_job(endpoint_url: str, on_source_delete: dict[str, str] | None = None, *,
                    checks: bool = True) -> dg.JobDefinition:
    """The profile's job (a fresh definition per call, as a code location reload would); reconstructable.

    Without ``checks``, the same assets without their asset checks (fewer processes to start).
    """
    profile = ImportProfile(name="enf", template="airtable_cases", target_url_env=TARGET_ENV,
                            on_source_delete=on_source_delete or {},
                            source={"kind": "airtable", "base": DEMO_BASE, "endpoint_url": endpoint_url,
                                    "token_env": TOKEN_ENV, "retry": QUICK_RETRIES})
    defs = build_profile_defs(profile, load_template("airtable_cases"), resources={
        "enf_target": PostgresDatabase(url=dg.EnvVar(TARGET_ENV)), "enf_settings": ImportRunSettings(),
        "enf_field_mapper": FieldMapper(use_ai=False)})
    if checks:
        return defs.resolve_job_def("enf_import")
    steps = dg.define_asset_job("enf_steps", selection=dg.AssetSelection.groups("enf").without_checks())
    return dg.Definitions(assets=defs.assets, resources=defs.resources, jobs=[steps]).resolve_job_def("enf_steps")


def sync(fake: FakeAirtable, instance: dg.DagsterInstance, *, full_refresh: bool = False, dry_run: bool = False,
         on_source_delete: dict[str, str] | None = None) -> Run:
    """Run the profile's job once, in process."""
    settings = {"full_refresh": full_refresh, "dry_run": dry_run}
    config = {"resources": {"enf_settings": {"config": settings}}} if any(settings.values()) else None
    result = enforcement_job(fake.url, on_source_delete).execute_in_process(instance=instance, raise_on_error=False,
                                                                            run_config=config)
    records = list(instance.all_logs(result.run_id))
    metadata = {e.asset_key.path[1]: {k: v.value for k, v in e.materialization.metadata.items()}
                for e in result.get_asset_materialization_events()}
    counts = {name: {a: metadata[name].get(a, 0) for a in ("created", "updated", "unchanged", "skipped", "failed")}
              for name in ENTITIES if name in metadata}
    return Run(result=result, counts=counts, logs=[r.user_message for r in records if r.user_message],
               events=serialize_value(records), metadata=metadata)


def served_cases(fake: FakeAirtable) -> Counter[str]:
    return Counter({record_id: n for record_id, n in fake.served_ids.items() if record_id.startswith("recCase")})


def query(url: str, statement: str, params: tuple | None = None) -> list[tuple]:
    with connection(url) as conn:
        return conn.execute(statement, params).fetchall()


def test_25000_cases_import_through_429s_and_a_dropped_connection_and_a_sync_reads_only_the_changes(
        running, target: str, instance) -> None:
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(25_000), notices_table(range(1, 41))]}, token=TOKEN,
                                rate_limit_every=20, drop_at=130))
    notices = len(fake.table(DEMO_BASE, "Notices").records)

    first = sync(fake, instance)

    assert first.result.success
    assert first.counts["cases"] == {"created": 25_000, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    assert first.counts["offenders"] == {"created": 997, "updated": 0, "unchanged": 0, "skipped": 24_003, "failed": 0}
    assert first.counts["notices"]["created"] == notices
    # one read fed offenders and cases: every case left the fake exactly once, none lost, none twice
    assert served_cases(fake) == Counter({case_id(n): 1 for n in range(1, 25_001)})
    assert query(target, "SELECT count(*), count(DISTINCT regulator_id), count(offender_id), count(*) FILTER"
                         " (WHERE active) FROM enforcement.cases") == [(25_000, 25_000, 25_000, 25_000)]
    # every case points at the offender its lookups name, and there is one row per name and postcode
    assert query(target, "SELECT count(*) FROM enforcement.cases AS c JOIN enforcement.offenders AS o"
                         " ON o.id = c.offender_id WHERE o.name <> c.offender_names ->> 0") == [(0,)]
    assert query(target, "SELECT count(*), count(DISTINCT (name, postcode)) FROM enforcement.offenders") == [(997, 997)]
    assert fake.dropped == 1 and fake.rate_limited >= 13
    # the run's log says how often the reads waited: each read's summary, adding up to the fake's 429s
    summaries = first.logged("times after HTTP 429")
    assert len(summaries) == 2
    waits = sum(int(line.split(" waited ")[1].split(" times")[0]) for line in summaries)
    assert waits == fake.rate_limited == len(first.logged("rate limited (HTTP 429)"))
    assert any("retried 1 failures" in line for line in summaries)

    changed = [case_id(n) for n in range(1001, 1041)]
    fake.change(DEMO_BASE, "Cases", changed, {"Status": "Closed", "Fine": 99.99})
    added = fake.add_cases(DEMO_BASE, "Cases", 10)
    fake.reset_counts()
    second = sync(fake, instance)

    assert second.result.success
    # the changed and added records, and the 5 whose modification time falls in the look-back window
    look_back = {case_id(n) for n in range(24_996, 25_001)}
    assert served_cases(fake) == Counter({record_id: 1 for record_id in [*changed, *added, *look_back]})
    assert second.counts["cases"] == {"created": 10, "updated": 40, "unchanged": 5, "skipped": 0, "failed": 0}
    assert second.counts["offenders"]["created"] == 0  # the new cases name offenders the target already has
    assert query(target, "SELECT count(*) FILTER (WHERE fine = 99.99 AND status = 'Closed'), count(*)"
                         " FROM enforcement.cases") == [(40, 25_010)]
    assert query(target, "SELECT count(*) FROM enforcement.offenders") == [(997,)]
    with connect(target) as conn:
        cursor = read_cursor(conn, profile="enf", entity="cases")
    newest = max(fake.table(DEMO_BASE, "Cases").records[r].modified for r in [*changed, *added])
    assert cursor.high_water_mark == newest.replace(microsecond=newest.microsecond // 1000 * 1000)
    assert cursor.run_id == second.result.run_id


def test_one_read_feeds_offenders_and_cases_matched_to_rows_the_application_holds(running, target: str,
                                                                                   instance) -> None:
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(1_200), notices_table(0)]}, token=TOKEN))
    five = case_fields(5)
    with connection(target) as conn:  # rows the application made itself: no external id
        offender = conn.execute("INSERT INTO enforcement.offenders (name, postcode) VALUES (%s, %s) RETURNING id",
                                (five["Offender Name"][0], five["Offender Postcode"][0])).fetchone()[0]
        case = conn.execute("INSERT INTO enforcement.cases (regulator_id, title) VALUES ('REG-0000003', 'opened by"
                            " hand') RETURNING id").fetchone()[0]
        conn.commit()
    fake.change(DEMO_BASE, "Cases", [case_id(7)], {"Offender": None, "Offender Name": None, "Offender Postcode": None})

    run = sync(fake, instance)

    assert run.result.success
    assert served_cases(fake) == Counter({case_id(n): 1 for n in range(1, 1_201)})
    # a case that names no offender yields no offender record (records.where), and no failure
    assert query(target, "SELECT offender_id FROM enforcement.cases WHERE external_id = %s", (case_id(7),)) == [(None,)]
    assert run.logged("1,199 records staged (derived from the records of cases) (1 of the 1,200 read left out")
    assert fake.by_scope[DEMO_BASE] == 2 + 12 + 1  # two schemas, 12 pages of cases, one (empty) of notices
    # offender 5 is named on cases 5 and 1002: both point at the application's row, nothing was created for it
    assert query(target, "SELECT regulator_id FROM enforcement.cases WHERE offender_id = %s ORDER BY 1",
                 (offender,)) == [("REG-0000005",), ("REG-0001002",)]
    assert run.counts["offenders"] == {"created": 996, "updated": 1, "unchanged": 0, "skipped": 202, "failed": 0}
    assert query(target, "SELECT count(*) FROM enforcement.offenders") == [(997,)]
    # the hand-made case was found by its regulator id and updated, not inserted again; it stays the
    # application's row (its natural key is not rewritten), and the state maps the record to it
    assert query(target, "SELECT id, title, source_system, external_id FROM enforcement.cases"
                         " WHERE regulator_id = 'REG-0000003'") == [(case, "Case 000003", "enforcement", None)]
    assert query(target, "SELECT target_id FROM import_control.record_state JOIN import_control.streams USING"
                         " (stream_id) WHERE entity = 'cases' AND source_id = %s", (case_id(3),)) == [(str(case),)]
    assert run.counts["cases"] == {"created": 1_199, "updated": 1, "unchanged": 0, "skipped": 0, "failed": 0}
    reads = query(target, "SELECT entity, consumers, loaded, complete, records FROM import_control.record_reads")
    assert sorted(reads) == [("cases", ["offenders", "cases"], ["offenders", "cases"], True, 1_200),
                             ("notices", ["notices"], ["notices"], True, 0)]
    # every raw table was dropped once its entities had loaded
    assert query(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'import_control' AND tablename LIKE"
                         " '%raw%'") == [(0,)]


def test_extract_steps_running_side_by_side_share_one_read(running, target: str) -> None:
    from import_pipelines.pipeline.steps import EntityRun, extract

    fake = running(FakeAirtable({DEMO_BASE: [cases_table(450)]}, token=TOKEN))
    template = load_template("airtable_cases")
    source = {"kind": "airtable", "base": DEMO_BASE, "endpoint_url": fake.url, "token_env": TOKEN_ENV}
    staged, logs = {}, []

    def step(entity: str) -> None:
        run = EntityRun(profile="enf", template=template, entity_name=entity, run_id="side-by-side",
                        source_url="", target_url=target, record_source=source)
        staged[entity] = extract(run, log=logs.append)

    threads = [threading.Thread(target=step, args=(name,)) for name in ("offenders", "cases")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {name: s.rows for name, s in staged.items()} == {"offenders": 450, "cases": 450}
    assert served_cases(fake) == Counter({case_id(n): 1 for n in range(1, 451)})
    assert fake.by_scope[DEMO_BASE] == 1 + 5  # the schema and five pages, once
    assert len([line for line in logs if "were read once in this run; using them" in line]) == 1


def test_steps_in_separate_processes_read_each_table_once_within_the_limit(running, target: str, instance) -> None:
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(1_500), notices_table(600)]}, token=TOKEN))
    job = dg.build_reconstructable_job(__name__, "enforcement_job", reconstructable_args=(fake.url,),
                                       reconstructable_kwargs={"checks": False},
                                       reconstructor_working_directory=str(PROJECT_ROOT))

    with dg.execute_job(job, instance=instance) as result:  # the multiprocess executor: a process per step
        assert result.success
        pids = {event.step_key.rsplit("__", 2)[-2]: event.pid for event in result.all_events
                if event.event_type_value == "STEP_START" and event.step_key.endswith("__extract")}

    assert len(pids) == 3 and len(set(pids.values())) == 3
    assert served_cases(fake) == Counter({case_id(n): 1 for n in range(1, 1_501)})
    notices = fake.table(DEMO_BASE, "Notices").records
    assert Counter({r: n for r, n in fake.served_ids.items() if r.startswith("recNtc")}) == Counter(
        {record_id: 1 for record_id in notices})
    assert query(target, "SELECT count(*), count(offender_id) FROM enforcement.cases") == [(1_500, 1_500)]
    assert query(target, "SELECT count(*) FROM enforcement.notices") == [(len(notices),)]
    # the fixture checks, at the fake, that the two processes' reads of the base never made 6 requests in a second


READ_IN_A_PROCESS = """
import sys
from import_pipelines.pipeline.steps import EntityRun, extract
from import_pipelines.templates.loader import load_template
run = EntityRun(profile="enf", template=load_template("airtable_cases"), entity_name=sys.argv[1],
                run_id="two-processes", source_url="", target_url=sys.argv[2], record_source={
                    "kind": "airtable", "base": sys.argv[3], "endpoint_url": sys.argv[4], "token_env": sys.argv[5]})
sys.stdin.readline()  # both processes start reading together
print(extract(run, log=lambda line: None).rows)
"""


def test_two_processes_reading_one_base_keep_its_limit_between_them(running, target: str) -> None:
    import subprocess
    import sys

    fake = running(FakeAirtable({DEMO_BASE: [cases_table(1_000), notices_table(1_000)]}, token=TOKEN))
    processes = [subprocess.Popen([sys.executable, "-c", READ_IN_A_PROCESS, entity, target, DEMO_BASE, fake.url,
                                   TOKEN_ENV], cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True) for entity in ("cases", "notices")]
    for process in processes:  # each with its own limiter, which alone would allow 5 requests a second
        process.stdin.write("go\n")
        process.stdin.flush()
    rows = [int(process.communicate(timeout=120)[0].strip()) for process in processes]

    assert rows == [1_000, len(fake.table(DEMO_BASE, "Notices").records)]
    assert fake.max_requests_in_window(DEMO_BASE) <= 5
    reads = query(target, "SELECT entity, started_at, finished_at FROM import_control.record_reads ORDER BY started_at")
    assert len(reads) == 2 and reads[1][1] >= reads[0][2]  # one after the other, never side by side


def test_a_failed_record_holds_the_cursor_until_it_loads(running, target: str, instance) -> None:
    now = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(60), notices_table(0)]}, token=TOKEN, clock=lambda: now[0]))
    assert sync(fake, instance).result.success

    fake.change(DEMO_BASE, "Cases", [case_id(10)], {"Status": "Reopened"})  # not a status the application knows
    now[0] += timedelta(minutes=20)
    fake.change(DEMO_BASE, "Cases", [case_id(20)], {"Fine": 10.0})
    second = sync(fake, instance)
    # the two changed records and the five the look-back window re-reads
    assert second.counts["cases"] == {"created": 0, "updated": 1, "unchanged": 5, "skipped": 0, "failed": 1}
    with connect(target) as conn:
        held = read_cursor(conn, profile="enf", entity="cases").high_water_mark
    assert held == datetime(2026, 3, 1, 12, 0, tzinfo=UTC) - timedelta(microseconds=1)
    assert second.logged("records failed; held before the earliest of them")

    fake.reset_counts()
    third = sync(fake, instance)  # nothing changed: the failed record is read again, and fails again
    assert case_id(10) in served_cases(fake) and third.counts["cases"]["failed"] == 1

    fake.change(DEMO_BASE, "Cases", [case_id(10)], {"Status": "Closed"})
    fourth = sync(fake, instance)
    assert fourth.counts["cases"]["updated"] == 1 and fourth.counts["cases"]["failed"] == 0
    with connect(target) as conn:
        assert read_cursor(conn, profile="enf", entity="cases").high_water_mark == now[0]
    assert query(target, "SELECT status FROM enforcement.cases WHERE external_id = %s", (case_id(10),)) == [("Closed",)]


@pytest.mark.parametrize("rule", ["leave", "deactivate", "delete"])
def test_records_deleted_at_the_source_are_handled_by_the_rule_after_a_complete_read(running, target: str, instance,
                                                                                      rule: str) -> None:
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(40), notices_table(40)]}, token=TOKEN))
    assert sync(fake, instance, on_source_delete={"cases": rule}).result.success
    quiet = next(n for n in range(1, 41) if case_fields(n)["Notice Count"] == 0)
    noisy = next(n for n in range(1, 41) if case_fields(n)["Notice Count"] >= 2)
    gone = [case_id(quiet), case_id(noisy)]
    fake.delete(DEMO_BASE, "Cases", gone)
    fake.delete(DEMO_BASE, "Notices", [notice_id(noisy, k) for k in range(1, case_fields(noisy)["Notice Count"] + 1)])
    before = {row[0]: row[1] for row in query(target, "SELECT external_id, to_jsonb(c.*) FROM enforcement.cases AS c"
                                                      " WHERE external_id = ANY(%s)", (gone,))}

    incremental = sync(fake, instance, on_source_delete={"cases": rule})  # a partial read proves nothing gone
    assert incremental.result.success
    assert query(target, "SELECT count(*) FILTER (WHERE active) FROM enforcement.cases") == [(40,)]
    if rule != "leave":
        assert incremental.logged("the read was not complete (incremental)")

    full = sync(fake, instance, full_refresh=True, on_source_delete={"cases": rule})
    assert full.result.success
    rows = dict(query(target, "SELECT external_id, active FROM enforcement.cases WHERE external_id = ANY(%s)", (gone,)))
    audit = query(target, "SELECT entity, action, source_id, target_id, before_image, source_ref FROM"
                          " import_control.import_records WHERE action IN ('deactivated', 'deleted', 'failed')"
                          " ORDER BY entity, source_id")
    # the gone notices are deleted whatever the cases' rule (the template's rule for notices), before their case
    deleted_notices = [(a[2], a[4]["notice_no"]) for a in audit if a[0] == "notices"]
    assert sorted(deleted_notices) == [(notice_id(noisy, k), f"N-{noisy:07d}-{k}")
                                       for k in range(1, case_fields(noisy)["Notice Count"] + 1)]
    assert all(a[1] == "deleted" for a in audit if a[0] == "notices")
    cases_audit = [a for a in audit if a[0] == "cases"]
    if rule == "leave":
        assert rows == {case_id(quiet): True, case_id(noisy): True} and cases_audit == []
    elif rule == "deactivate":
        assert rows == {case_id(quiet): False, case_id(noisy): False}
        assert [(a[1], a[2]) for a in cases_audit] == [("deactivated", r) for r in sorted(gone)]
        assert all(a[4] == before[a[2]] and a[4]["active"] is True for a in cases_audit)
    else:
        assert rows == {}
        assert [(a[1], a[2]) for a in cases_audit] == [("deleted", r) for r in sorted(gone)]
        # the before-image is the whole row as it was: a rollback can put it back
        assert all(a[4] == before[a[2]] for a in cases_audit)
    assert all(a[5] == f"no longer in the source of {a[0]}" for a in audit)
    assert query(target, "SELECT count(*) FROM enforcement.cases WHERE active") == [(38 if rule != "leave" else 40,)]
    # the offenders stay: their rule is the template's leave
    assert query(target, "SELECT count(*) FROM enforcement.offenders") == [(40,)]

    if rule == "deactivate":  # the record comes back: its row is active again
        table = fake.table(DEMO_BASE, "Cases")
        table.put(FakeRecord(id=case_id(quiet), created=CASES_EPOCH, modified=datetime.now(UTC),
                             fields=case_fields(quiet)))
        back = sync(fake, instance, on_source_delete={"cases": rule})
        assert back.counts["cases"]["updated"] == 1
        assert query(target, "SELECT active FROM enforcement.cases WHERE external_id = %s", (case_id(quiet),)) == [
            (True,)]


def test_a_source_that_lost_most_of_its_records_deletes_nothing(running, target: str, instance) -> None:
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(30), notices_table(0)]}, token=TOKEN))
    assert sync(fake, instance).result.success
    fake.delete(DEMO_BASE, "Cases", [case_id(n) for n in range(1, 21)])

    run = sync(fake, instance, full_refresh=True)

    assert not run.result.success
    [failure] = [e for e in run.result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.to_string()
    assert "20 of the 30 rows of enforcement.cases this profile knows would be deactivated" in message
    assert "nothing was changed" in message and "entities.cases.on_source_delete.max_share" in message
    assert query(target, "SELECT count(*) FILTER (WHERE active) FROM enforcement.cases") == [(30,)]


def test_the_token_appears_nowhere(running, target: str, instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))  # where a dry run writes its report
    fake = running(FakeAirtable({DEMO_BASE: [cases_table(350), notices_table(20)]}, token=TOKEN,
                                rate_limit_every=3, drop_at=5))
    dry = sync(fake, instance, dry_run=True)
    assert dry.result.success and list((tmp_path / "data" / "reports").rglob("*.csv"))
    good = sync(fake, instance)
    assert good.result.success and good.logged("rate limited (HTTP 429)") and fake.dropped == 1

    class Echoing(FakeAirtable):
        """A server that quotes the credentials it refused in its error, as some do."""

        def answer(self, request: Request) -> Answer:
            return Answer(403, {"error": {"type": "INVALID_PERMISSIONS",
                                          "message": f"token {request.headers.get('Authorization')} may not read"}})

    echoing = running(Echoing({DEMO_BASE: [cases_table(5)]}, token=TOKEN))
    refused = sync(echoing, instance)
    assert not refused.result.success
    failures = [e.step_failure_data.error for e in refused.result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and all("INVALID_PERMISSIONS" in f.to_string() and "***" in f.to_string() for f in failures)
    # the exception itself, as a caller of the steps gets it, with its chain
    from import_pipelines.pipeline.steps import EntityRun, extract

    direct = EntityRun(profile="enf", template=load_template("airtable_cases"), entity_name="cases", run_id="direct",
                       source_url="", target_url=target, record_source={
                           "kind": "airtable", "base": DEMO_BASE, "endpoint_url": echoing.url, "token_env": TOKEN_ENV})
    with pytest.raises(Exception) as caught:
        extract(direct, log=lambda line: None)
    out, err = capfd.readouterr()
    runs = (dry, good, refused)
    emitted = {"logs": "\n".join(line for run in runs for line in run.logs), "events": "".join(r.events for r in runs),
               "results": "".join(serialize_value(run.result.all_events) for run in runs),
               "metadata": repr([run.metadata for run in runs]), "failures": "\n".join(f.to_string() for f in failures),
               "exception": "".join(traceback.format_exception(caught.value)) + repr(caught.value),
               "control tables": control_tables(target), "instance files": everything_under(tmp_path),
               "stdout and stderr": out + err}
    assert "INVALID_PERMISSIONS" in emitted["exception"]
    assert "recCase" in emitted["control tables"] and "enf_import" in emitted["events"]  # the search saw real output
    assert [where for where, text in emitted.items() if TOKEN in text] == []
