"""Faults against real PostgreSQL, each followed by a re-run that must converge.

- the process running an import is SIGKILLed in the middle of its loads;
- the source session is terminated (``pg_terminate_backend``) in the middle of an extract;
- the target's merging sessions are terminated in the middle of their batches: those batches are
  retried on new sessions within the same run.

After the re-run, the target must hold what an uninterrupted import of the same source holds:
every source record exactly once, references pointing at the same records, and an audit that
adds up (every imported row has the ``created`` record committed with it, no record points at a
row that is not there, the re-run has one record per staged row). Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from import_pipelines.db import connect
from import_pipelines.demo.freescout import generate_freescout
from import_pipelines.pipeline.checks import reconciliation
from import_pipelines.pipeline.steps import EntityRun, dedupe, extract, load, map_and_validate
from import_pipelines.service_vault import migrate
from import_pipelines.settings import PROJECT_ROOT
from import_pipelines.templates.loader import load_template
from import_pipelines_tests.helpers import run_import

CUSTOMERS = 1200
BATCH_ROWS = 150
WAIT_SECONDS = 120

# what identifies each imported record and what it points at, independent of target ids
SIGNATURES = {
    "accounts": "SELECT external_id, name FROM accounts",
    "customer_users": "SELECT u.external_id, u.email, u.display_name, a.external_id FROM customer_users u"
                      " LEFT JOIN accounts a ON a.id = u.account_id",
    "agents": "SELECT external_id, email, role, is_active FROM agents",
    "tickets": "SELECT t.external_id, t.status, t.subject, c.external_id, g.external_id FROM tickets t"
               " JOIN customer_users c ON c.id = t.customer_id LEFT JOIN agents g ON g.id = t.agent_id",
    "time_entries": "SELECT e.external_id, e.minutes, t.external_id FROM time_entries e JOIN tickets t ON t.id = e.ticket_id",
}
KILL_SCRIPT = """
import sys
from import_pipelines.templates.loader import load_template
from import_pipelines_tests.helpers import run_import
run_import(template=load_template("freescout"), source_url=sys.argv[1], target_url=sys.argv[2], run_id="killed",
           batch_rows=int(sys.argv[3]))
"""


def content(url: str) -> dict[str, list[tuple]]:
    with connect(url) as conn:
        return {table: sorted(conn.execute(query).fetchall(), key=repr) for table, query in SIGNATURES.items()}


def assert_audit_consistent(url: str, *, run_id: str) -> dict[str, int]:
    """Audit and tables agree: every row has its created record, no record of a missing row; returns
    the records ``run_id`` accounted for per entity (its run summary: audited and unchanged ones)."""
    with connect(url) as conn:
        for table in SIGNATURES:
            duplicated = conn.execute(f"SELECT count(*) FROM (SELECT external_id FROM {table}"
                                      " GROUP BY external_id HAVING count(*) > 1) AS d").fetchone()[0]
            assert duplicated == 0, table
            unaudited = conn.execute(
                f"SELECT count(*) FROM {table} AS t WHERE NOT EXISTS (SELECT 1 FROM import_control.import_records r"
                " WHERE r.target_table LIKE %s AND r.action = 'created' AND r.target_id = t.id::text)",
                (f"%{table}",)).fetchone()[0]
            assert unaudited == 0, f"{table}: rows without the 'created' record committed with them"
            phantom = conn.execute(
                f"SELECT count(*) FROM import_control.import_records AS r WHERE r.target_table LIKE %s"
                f" AND r.action IN ('created', 'updated') AND NOT EXISTS (SELECT 1 FROM {table} AS t"
                " WHERE t.id::text = r.target_id)", (f"%{table}",)).fetchone()[0]
            assert phantom == 0, f"{table}: audit records of rows that are not there"
        audited = dict(conn.execute("SELECT entity, count(*) FROM import_control.import_records WHERE run_id = %s"
                                    " GROUP BY entity", (run_id,)).fetchall())
        summary = conn.execute(
            "SELECT s.entity, m.source_rows, m.created + m.updated + m.skipped + m.failed, m.unchanged"
            " FROM import_control.run_summaries m JOIN import_control.runs r USING (run_seq)"
            " JOIN import_control.streams s USING (stream_id) WHERE r.run_id = %s", (run_id,)).fetchall()
    for entity, _, written, _ in summary:  # every record the run acted on has its audit record
        assert audited.get(entity, 0) <= written, entity
    return {entity: rows for entity, rows, _, _ in summary}


def reference(new_database: Callable[[str], str], source: str) -> dict[str, list[tuple]]:
    """What an uninterrupted import of ``source`` leaves in a fresh target."""
    target = new_database("fault_reference")
    migrate(target)
    run_import(template=load_template("freescout"), source_url=source, target_url=target, run_id="reference",
               batch_rows=BATCH_ROWS)
    return content(target)


def wait_for(predicate: Callable[[], bool], *, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {WAIT_SECONDS} s waiting for {what}")
        time.sleep(0.02)


def target_before_tickets(new_database: Callable[[str], str], source: str, *, run_id: str) -> str:
    """A fresh target with every entity the tickets reference loaded by run ``run_id``."""
    target = new_database("fault_target")
    migrate(target)
    run_import(template=load_template("freescout"), source_url=source, target_url=target, run_id=run_id,
               batch_rows=BATCH_ROWS, entities=["accounts", "customer_users", "agents"])
    return target


def interrupt_tickets_load(message: str) -> None:
    """A step log that interrupts the tickets load after its first batch, as a cancelled run's step is."""
    if message.startswith("tickets load: ") and "%" in message:
        raise KeyboardInterrupt


@pytest.fixture
def fault_source(new_database: Callable[[str], str]) -> str:
    source = new_database("fault_source")
    generate_freescout(source, customers=CUSTOMERS)
    return source


def test_sigkill_mid_load_then_rerun_converges(fault_source: str, new_database: Callable[[str], str]) -> None:
    target = new_database("fault_target")
    migrate(target)
    worker = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, fault_source, target, str(BATCH_ROWS)],
                              cwd=PROJECT_ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        def loading_customers() -> bool:
            assert worker.poll() is None, "the import ended before it could be killed"
            with connect(target) as conn:
                if conn.execute("SELECT to_regclass('import_control.import_records')").fetchone()[0] is None:
                    return False
                return conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] > 0

        wait_for(loading_customers, what="the customers' load to begin")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    with connect(target) as conn:  # killed mid-way: the later entities were not loaded
        assert conn.execute("SELECT count(*) FROM time_entries").fetchone()[0] == 0

    results = run_import(template=load_template("freescout"), source_url=fault_source, target_url=target,
                         run_id="rerun", batch_rows=BATCH_ROWS)

    assert content(target) == reference(new_database, fault_source)
    # the re-run accounted for every source record exactly once
    assert assert_audit_consistent(target, run_id="rerun") == {entity: r.rows for entity, r in results.items()}


def test_source_session_terminated_mid_extract_then_rerun_converges(fault_source: str,
                                                                    new_database: Callable[[str], str]) -> None:
    target = new_database("fault_target")
    migrate(target)
    template = load_template("freescout")
    source_db = conninfo_to_dict(fault_source)["dbname"]
    terminated: list[int] = []

    def log(message: str) -> None:
        # called from inside the extract's COPY loop: the source session is streaming right now
        if message.startswith("tickets extract: ") and "%" in message and not terminated:
            with connect(fault_source, autocommit=True) as admin:
                pids = [r[0] for r in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                    " AND query LIKE 'COPY (%%'", (source_db,)).fetchall()]
                assert pids, "no streaming source session found"
                terminated.extend(pids)
                assert all(admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] for pid in pids)

    with pytest.raises(psycopg.OperationalError):
        for name in template.entities:
            run = EntityRun(profile="demo", template=template, entity_name=name, run_id="terminated",
                            source_url=fault_source, target_url=target, batch_rows=BATCH_ROWS)
            staged = extract(run, log=log)
            load(run, dedupe(run, map_and_validate(run, staged, log=log), log=log), log=log)
    assert terminated
    with connect(target) as conn:  # the entities before tickets were loaded, the ones from tickets on were not
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 0

    results = run_import(template=template, source_url=fault_source, target_url=target, run_id="rerun",
                         batch_rows=BATCH_ROWS)

    assert content(target) == reference(new_database, fault_source)
    assert assert_audit_consistent(target, run_id="rerun") == {entity: r.rows for entity, r in results.items()}


def test_target_sessions_terminated_mid_load_are_retried_without_duplicates(fault_source: str,
                                                                            new_database: Callable[[str], str]) -> None:
    """The merging sessions are terminated while their batches are in flight; each batch is retried
    on a new session and the import finishes in the same run, as if nothing had happened."""
    target = target_before_tickets(new_database, fault_source, run_id="terminated")
    template = load_template("freescout")
    target_db = conninfo_to_dict(target)["dbname"]
    logs: list[str] = []
    outcome: dict[str, object] = {}

    def load_tickets() -> None:
        try:
            outcome["results"] = run_import(template=template, source_url=fault_source, target_url=target,
                                            run_id="terminated", batch_rows=BATCH_ROWS,
                                            entities=["tickets", "time_entries"], log=logs.append)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    # the merges of tickets wait behind this lock while the test terminates them: mid-batch, every time
    admin = psycopg.connect(target, autocommit=True)
    blocker = psycopg.connect(target)
    worker = threading.Thread(target=load_tickets)
    try:
        blocker.execute("LOCK TABLE tickets IN SHARE MODE")
        worker.start()

        def waiting_merges() -> list[int]:
            return [r[0] for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
                " AND query LIKE 'WITH b AS MATERIALIZED%%'", (target_db,)).fetchall()]

        terminated: list[int] = []
        for _ in range(2):  # the first attempts, then the retries on their new sessions
            waiting: list[int] = []

            def new_waiting_merges() -> bool:
                waiting[:] = [pid for pid in waiting_merges() if pid not in terminated]
                return bool(waiting)

            wait_for(new_waiting_merges, what="a tickets batch waiting in its merge")
            for pid in waiting:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
                terminated.append(pid)
        blocker.rollback()  # the lock goes; the third attempts merge
        worker.join(timeout=WAIT_SECONDS)
        assert not worker.is_alive(), "the load did not finish"
    finally:
        blocker.rollback()
        blocker.close()
        if worker.is_alive():
            worker.join(timeout=WAIT_SECONDS)
        admin.close()
    assert "error" not in outcome, outcome.get("error")
    retries = [m for m in logs if m.startswith("tickets load: transient failure")]
    assert len(retries) >= 2 and "AdminShutdown" in retries[0] and "retry 1 on a new session" in retries[0], retries

    assert content(target) == reference(new_database, fault_source)  # no duplicate, no row lost
    results = outcome["results"]
    # each record of the run has one audit record, and the summary counts each source row once
    summary = assert_audit_consistent(target, run_id="terminated")
    assert summary["tickets"] == results["tickets"].rows and summary["time_entries"] == results["time_entries"].rows
    with connect(target) as conn:
        audited = dict(conn.execute(
            "SELECT action, count(*) FROM import_control.import_records WHERE run_id = 'terminated'"
            " AND entity = 'tickets' GROUP BY action").fetchall())
        repeated = conn.execute(
            "SELECT entity, action, count(*) FROM (SELECT entity, min(action) AS action FROM import_control.import_records"
            " WHERE run_id = 'terminated' AND entity IN ('tickets', 'time_entries')"
            " GROUP BY entity, source_id HAVING count(*) > 1) AS d GROUP BY 1, 2").fetchall()
    assert repeated == [], repeated
    counts = results["tickets"].counts
    assert audited == {a: n for a, n in counts.items() if n and a != "unchanged"}
    assert sum(counts.values()) == results["tickets"].rows


def test_an_interrupted_load_leaves_whole_batches_and_starts_no_more(fault_source: str,
                                                                     new_database: Callable[[str], str]) -> None:
    """Cancelling a run interrupts its step (Dagster raises in the step's thread): the batches being
    merged commit whole with their audit rows, the queued ones never start, a re-run converges."""
    target = target_before_tickets(new_database, fault_source, run_id="cancelled")
    template = load_template("freescout")
    committed_then: list[int] = []

    def cancel(message: str) -> None:
        if message.startswith("tickets load: ") and "%" in message:
            with connect(target) as conn:  # what had committed when the step was interrupted
                committed_then.append(conn.execute(
                    "SELECT count(*) FROM import_control.import_records WHERE entity = 'tickets'").fetchone()[0])
        interrupt_tickets_load(message)

    with pytest.raises(KeyboardInterrupt):
        run_import(template=template, source_url=fault_source, target_url=target, run_id="cancelled",
                   batch_rows=BATCH_ROWS, entities=["tickets"], log=cancel)
    with connect(target) as conn:
        rows = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        audited = dict(conn.execute("SELECT action, count(*) FROM import_control.import_records"
                                    " WHERE run_id = 'cancelled' AND entity = 'tickets' GROUP BY action").fetchall())
        staged = conn.execute("SELECT count(*) FROM import_control.staging_tables WHERE name LIKE 'stg_demo_tickets_%'"
                              ).fetchone()[0]
    # whole batches only: every created row has its audit record, every record of a batch is audited
    assert rows == audited.get("created", 0) and sum(audited.values()) % BATCH_ROWS == 0
    # what had committed, and the batches the sessions began until the interrupt reached them (the
    # count above takes a connection's time); never the rest of the tickets (checked after the re-run)
    assert BATCH_ROWS <= committed_then[0] <= sum(audited.values())
    assert staged == 1  # left for a re-execution (or the clean-up)

    results = run_import(template=template, source_url=fault_source, target_url=target, run_id="rerun",
                         batch_rows=BATCH_ROWS)
    assert content(target) == reference(new_database, fault_source)
    assert assert_audit_consistent(target, run_id="rerun") == {entity: r.rows for entity, r in results.items()}
    assert sum(audited.values()) < results["tickets"].rows  # the rest of the tickets never started


@pytest.mark.parametrize("second_run", ["first", "second"], ids=["step retry", "re-execution"])
def test_a_load_run_again_goes_on_from_its_committed_batches(fault_source: str, new_database: Callable[[str], str],
                                                             second_run: str) -> None:
    """The tickets load is interrupted after its first batches, then run again on the same staging:
    as Dagster's retry of the step (same run) or a re-execution from failure (a new run of the
    group). Nothing committed is merged again: no record is audited twice, and the two attempts
    together count each staged record once."""
    target = target_before_tickets(new_database, fault_source, run_id="first")
    template = load_template("freescout")
    first = EntityRun(profile="demo", template=template, entity_name="tickets", run_id="first", source_url=fault_source,
                      target_url=target, batch_rows=BATCH_ROWS)
    quiet = lambda message: None  # noqa: E731
    staged = dedupe(first, map_and_validate(first, extract(first, log=quiet), log=quiet), log=quiet)
    with pytest.raises(KeyboardInterrupt):
        load(first, staged, log=interrupt_tickets_load)
    logs: list[str] = []
    again = replace(first, run_id=second_run, run_group="first")
    result = load(again, staged, log=logs.append)
    run_import(template=template, source_url=fault_source, target_url=target, run_id="first",
               batch_rows=BATCH_ROWS, entities=["time_entries"])

    assert content(target) == reference(new_database, fault_source)
    with connect(target) as conn:
        audited = dict(conn.execute(
            "SELECT action, count(*) FROM import_control.import_records WHERE run_id IN ('first', 'second')"
            " AND entity = 'tickets' GROUP BY action").fetchall())
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT source_id FROM import_control.import_records WHERE entity = 'tickets'"
            " GROUP BY source_id HAVING count(*) > 1) AS d").fetchone()[0]
    assert twice == 0 and audited.get("failed", 0) > 0
    # the second attempt's counts include what the first committed: as one uninterrupted load
    assert {a: n for a, n in result.counts.items() if n and a != "unchanged"} == audited
    assert sum(result.counts.values()) == result.rows == staged.rows
    assert any("records were merged by an earlier attempt" in m for m in logs), logs
    # the reconciliation check agrees: the source count of the attempt that staged, the group's audit
    outcome = reconciliation(target, profile="demo", entity="tickets", run_id=second_run)
    assert outcome is not None and outcome["passed"], outcome
