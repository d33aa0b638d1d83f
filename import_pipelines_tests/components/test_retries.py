"""Step retries: transient database failures are retried by the step's policy, other errors fail once."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from import_pipelines.components.retries import STEP_RETRY_POLICY, retry_transient_only
from import_pipelines.db import connection
from import_pipelines.db.connect import connect
from import_pipelines.db.transient import is_transient


def server_error(url: str, statement: str) -> psycopg.Error:
    """The error PostgreSQL raises for ``statement`` (a real one, with its SQLSTATE)."""
    with connection(url, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as error:
            return error
    raise AssertionError(f"{statement} did not fail")


def raised(code: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{code}'; END $$"


def test_transient_errors_are_told_from_the_others(target_url: str) -> None:
    assert is_transient(server_error(target_url, "SELECT pg_terminate_backend(pg_backend_pid())"))  # 57P01
    assert is_transient(server_error(target_url, raised("40001")))  # serialisation failure
    assert is_transient(server_error(target_url, raised("40P01")))  # deadlock
    assert is_transient(server_error(target_url, raised("08006")))  # connection failure
    assert not is_transient(server_error(target_url, "SELECT no_such_column FROM pg_class"))
    assert not is_transient(server_error(target_url, "SELECT 'x'::int"))
    assert not is_transient(server_error(target_url, raised("57014")))  # a cancelled statement
    assert not is_transient(ValueError("entity 'tickets' has no field 'subject'"))
    wrapped = RuntimeError("load failed")
    wrapped.__cause__ = server_error(target_url, raised("40001"))
    assert is_transient(wrapped)
    with pytest.raises(psycopg.OperationalError) as missing:  # a refused login or a missing database: not retried
        connect(target_url + "_missing")
    assert not is_transient(missing.value)


def test_the_step_policy_retries_only_transient_errors(target_url: str) -> None:
    attempts: dict[str, int] = {"transient": 0, "template": 0}
    fast = dg.RetryPolicy(max_retries=STEP_RETRY_POLICY.max_retries, delay=0.01, backoff=STEP_RETRY_POLICY.backoff,
                          jitter=STEP_RETRY_POLICY.jitter)

    @dg.op(retry_policy=fast)
    def dropped_once() -> int:
        attempts["transient"] += 1
        with retry_transient_only("tickets load"):
            if attempts["transient"] == 1:  # the server ends the session in the middle of the step
                with connection(target_url, autocommit=True) as conn:
                    conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            return 1

    @dg.op(retry_policy=fast)
    def template_error() -> int:
        attempts["template"] += 1
        with retry_transient_only("tickets extract"):
            raise ValueError("entity 'tickets': column t.subjet does not exist")

    @dg.job
    def steps() -> None:
        dropped_once()
        template_error()

    with dg.instance_for_test() as instance:
        result = steps.execute_in_process(instance=instance, raise_on_error=False)
    assert attempts == {"transient": 2, "template": 1}
    assert result.output_for_node("dropped_once") == 1
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "template_error"
    assert "tickets extract: ValueError: entity 'tickets': column t.subjet does not exist" in \
        failure.step_failure_data.user_failure_data.description
    assert STEP_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL and STEP_RETRY_POLICY.jitter == dg.Jitter.PLUS_MINUS
