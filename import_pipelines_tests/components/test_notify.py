"""Signed run notifications: a real HTTP receiver, real Dagster runs of a push profile, the deliveries
recorded in the target's control schema."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from import_pipelines.components.build import build_profile_defs
from import_pipelines.components.profile import ImportProfile
from import_pipelines.control import ensure_control_schema
from import_pipelines.db import connection
from import_pipelines.mapping.resource import FieldMapper
from import_pipelines.push import BulkPush, push_run_config
from import_pipelines.resources import ImportRunSettings, PostgresDatabase
from import_pipelines.service_vault.migrate import migrate
from import_pipelines.sources.http_session import RetryPolicy
from import_pipelines.templates.loader import load_template, template_path
from import_pipelines.webhooks import WebhookEndpoint, WebhookError, deliver, message, new_secret
from import_pipelines_tests.push.test_push import free_port

TARGET_ENV = "IMPORT_PIPELINES_TEST_NOTIFY_TARGET_URL"
FAST = RetryPolicy(max_attempts=3, max_elapsed_s=10, backoff_s=0.01, backoff_max_s=0.05, jitter_s=0.0,
                   rate_limit_penalty_s=0.01)


class Receiver:
    """An HTTP endpoint answering with the scripted statuses in turn (then 200); it keeps what it was sent."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/imports"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = new_secret()
    monkeypatch.setenv("NOTIFY_SECRET", value)
    return value


@pytest.fixture
def target(target_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    migrate(target_url)
    monkeypatch.setenv(TARGET_ENV, target_url)
    with connection(target_url, autocommit=True) as conn:
        ensure_control_schema(conn)
    return target_url


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The body, once its signature checks out by the Standard Webhooks rule, computed here by hand."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    return json.loads(body)


def deliveries(url: str) -> list[tuple]:
    with connection(url) as conn:
        return conn.execute("SELECT event, endpoint, status_code, attempts, error, delivered_at IS NOT NULL"
                            " FROM import_control.webhook_deliveries ORDER BY recorded_at").fetchall()


def test_a_message_is_signed_retried_through_server_errors_recorded_and_not_sent_twice(
        target: str, secret: str) -> None:
    server = Receiver([503, 502])
    try:
        endpoint = WebhookEndpoint(url=server.url + "?token=abc123", secret_env="NOTIFY_SECRET")
        body = message("succeeded", {"run_id": "r1", "streams": []})
        with connection(target, autocommit=True) as conn:
            first = deliver(endpoint, "succeeded", body, run_id="r1", profile="p", conn=conn, log=lambda m: None,
                            policy=FAST)
            again = deliver(endpoint, "succeeded", body, run_id="r1", profile="p", conn=conn, log=lambda m: None,
                            policy=FAST)
        assert (first.status_code, first.attempts, first.delivered) == (200, 3, True)
        assert again.already_delivered and len(server.received) == 3  # the repeat was not sent
        # every attempt carries the same message id; the receiver verifies the last one
        assert len({headers["webhook-id"] for headers, _ in server.received}) == 1
        headers, raw = server.received[-1]
        assert verified(secret, headers, raw) == body
        # the recorded endpoint has no query string (the token stays out of the control schema)
        assert deliveries(target) == [("succeeded", server.url, 200, 3, None, True)]
    finally:
        server.close()


def test_a_refused_or_unreachable_endpoint_is_recorded_as_not_delivered(target: str, secret: str) -> None:
    server = Receiver([400])
    log: list[str] = []
    try:
        refused = WebhookEndpoint(url=server.url, secret_env="NOTIFY_SECRET")
        gone = WebhookEndpoint(url=f"http://127.0.0.1:{free_port()}/x", secret_env="NOTIFY_SECRET")
        with connection(target, autocommit=True) as conn:
            no = deliver(refused, "failed", message("failed", {}), run_id="r2", profile="p", conn=conn,
                         log=log.append, policy=FAST)
            down = deliver(gone, "failed", message("failed", {}), run_id="r2", profile="p", conn=conn,
                           log=log.append, policy=FAST)
    finally:
        server.close()
    assert (no.status_code, no.attempts, no.delivered, no.error) == (400, 1, False, "HTTP 400 Bad Request")
    assert (down.status_code, down.attempts, down.delivered) == (None, 3, False)
    assert "gave up after 3 attempts" in down.error
    assert [row[2:] for row in deliveries(target)] == [(400, 1, "HTTP 400 Bad Request", False),
                                                       (None, 3, down.error, False)]
    assert any("NOT delivered" in line for line in log)


def test_the_command_prints_a_secret_the_signer_takes(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from import_pipelines import cli

    assert cli.main(["webhook-secret"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("whsec_") and len(base64.b64decode(printed[6:])) == 24
    monkeypatch.setenv("PRINTED_SECRET", printed)
    WebhookEndpoint(url="http://a/", secret_env="PRINTED_SECRET").signer()


def test_an_endpoint_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="exactly one of url and url_env"):
        WebhookEndpoint(url="http://a/", url_env="X", secret_env="S")
    monkeypatch.delenv("MISSING_URL", raising=False)
    with pytest.raises(WebhookError, match="MISSING_URL is not set"):
        WebhookEndpoint(url_env="MISSING_URL", secret_env="S").resolved_url()
    monkeypatch.setenv("BAD_SECRET", "not base64 !!")
    with pytest.raises(WebhookError, match="BAD_SECRET is not a Standard Webhooks secret"):
        WebhookEndpoint(url="http://a/", secret_env="BAD_SECRET").signer()
    # the library alone would take these as secrets of 2 and 3 bytes, which no sender signs with
    for mistyped in ("whsec_abc", "whsec_a b c d", "whsec_" + base64.b64encode(b"x" * 23).decode(),
                     "whsec_" + base64.b64encode(b"x" * 24).decode() + "!"):
        monkeypatch.setenv("BAD_SECRET", mistyped)
        with pytest.raises(WebhookError, match="BAD_SECRET is not a Standard Webhooks secret"):
            WebhookEndpoint(url="http://a/", secret_env="BAD_SECRET").signer()
    unpadded = base64.b64encode(b"y" * 32).decode().rstrip("=")
    for fine in ("whsec_" + unpadded, unpadded, f"whsec_{unpadded}\n"):
        monkeypatch.setenv("GOOD_SECRET", fine)
        WebhookEndpoint(url="http://a/", secret_env="GOOD_SECRET").signer()
    with pytest.raises(WebhookError, match="is not an http"):
        WebhookEndpoint(url="ftp://a/", secret_env="S").resolved_url()


def notify_profile(url: str) -> ImportProfile:
    return ImportProfile(name="crm_notify", template="contacts", target_url_env=TARGET_ENV, source={"kind": "push"},
                         mode="create_only",
                         notify=[{"url": url, "secret_env": "NOTIFY_SECRET", "events": ["succeeded", "failed"]}])


def notify_defs(profile: ImportProfile) -> dg.Definitions:
    return build_profile_defs(profile, load_template(template_path("contacts")), resources={
        "crm_notify_target": PostgresDatabase(url=dg.EnvVar(TARGET_ENV)), "crm_notify_settings": ImportRunSettings(),
        "crm_notify_field_mapper": FieldMapper(use_ai=False), "crm_notify_push": BulkPush()})


def evaluate(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, run_id: str,
             event_type: dg.DagsterEventType) -> Any:
    """Run the sensor ``name`` on the run's end as the daemon would."""
    sensor = defs.resolve_sensor_def(name)
    (record,) = instance.get_records_for_run(run_id, of_type=event_type).records
    context = dg.build_run_status_sensor_context(sensor_name=name, dagster_event=record.event_log_entry.dagster_event,
                                                 dagster_instance=instance,
                                                 dagster_run=instance.get_run_by_id(run_id))
    return sensor(context)


def test_a_push_run_that_ends_tells_its_endpoint_with_the_runs_counts(
        target: str, secret: str, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORT_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    profile = notify_profile(receiver.url)
    defs = notify_defs(profile)
    assert {s.name for s in defs.sensors} == {"crm_notify_notify_succeeded", "crm_notify_notify_failed"}
    job = defs.resolve_job_def("crm_notify_import")
    contacts = [{"email": f"p{i}@example.org", "first_name": f"P{i}"} for i in range(5)] + [{"first_name": "Nobody"}]
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = job.execute_in_process(run_config=push_run_config("crm_notify", {
            "contacts": contacts, "external_id": "batch-9"}), instance=instance)
        skip = evaluate(defs, "crm_notify_notify_succeeded", instance, result.run_id, dg.DagsterEventType.RUN_SUCCESS)
    assert "1 of 1 endpoints told" in skip.skip_message
    ((headers, raw),) = receiver.received
    sent = verified(secret, headers, raw)
    assert sent["type"] == "import.run.succeeded"
    data = sent["data"]
    assert (data["run_id"], data["job"], data["profile"], data["status"], data["external_id"]) == (
        result.run_id, "crm_notify_import", "crm_notify", "SUCCESS", "batch-9")
    assert data["started_at"] and data["ended_at"] and data["failures"] == []
    (stream,) = data["streams"]
    assert {k: stream[k] for k in ("entity", "source_rows", "created", "failed")} == {
        "entity": "contacts", "source_rows": 6, "created": 5, "failed": 1}
    assert data["errors"] == 2  # the problems of the contact with neither an email nor a phone: no contact, no id
    assert deliveries(target) == [("succeeded", receiver.url, 200, 1, None, True)]


def test_a_failed_run_tells_the_failed_step_without_the_database_password(
        target: str, secret: str, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORT_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    # the target: a database that does not exist, reached with a password (the server trusts, then refuses)
    monkeypatch.setenv(TARGET_ENV, target.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
                       .rsplit("/", 1)[0] + "/no_such_database_here")
    defs = notify_defs(notify_profile(receiver.url))
    job = defs.resolve_job_def("crm_notify_import")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = job.execute_in_process(run_config=push_run_config("crm_notify", {
            "contacts": [{"email": "a@example.org"}]}), instance=instance, raise_on_error=False)
        assert not result.success
        evaluate(defs, "crm_notify_notify_failed", instance, result.run_id, dg.DagsterEventType.RUN_FAILURE)
    ((headers, raw),) = receiver.received
    assert b"s3cret-pw" not in raw
    sent = verified(secret, headers, raw)
    assert sent["type"] == "import.run.failed" and sent["data"]["status"] == "FAILURE"
    assert sent["data"]["streams"] is None  # the target could not be reached: the message went without counts
    (failure, *_) = sent["data"]["failures"]
    assert "no_such_database_here" in failure["message"] and failure["step"]


def test_notify_endpoints_in_a_defs_yaml_give_the_profile_its_sensors(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import warnings

    folder = tmp_path / "notify_defs" / "crm"
    folder.mkdir(parents=True)
    (tmp_path / "setup.py").write_text("")
    (tmp_path / "notify_defs" / "__init__.py").write_text("")
    (folder / "defs.yaml").write_text(
        "type: import_pipelines.components.ImportProfile\n"
        "attributes:\n  name: crm\n  template: contacts\n  source: {kind: push}\n  notify:\n"
        "    - {url_env: CRM_HOOK_URL, secret_env: CRM_HOOK_SECRET, events: [failed, canceled]}\n"
        "    - {url: 'https://example.org/hook', secret_env: CRM_HOOK_SECRET}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        defs = dg.load_defs(importlib.import_module("notify_defs"))
    assert {s.name for s in defs.sensors} == {"crm_notify_succeeded", "crm_notify_failed", "crm_notify_canceled"}
