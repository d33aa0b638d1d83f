"""The push receiver: signed HTTP posts refused or launched, over real HTTP (uvicorn), the launch through a
real ``dagster dev``."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import uvicorn
from standardwebhooks.webhooks import Webhook

from import_pipelines.db import connection
from import_pipelines.push.receiver import PUSH_TAG, WEBHOOK_ID_TAG, Launcher, receiver_app
from import_pipelines.webhooks import new_secret
from import_pipelines_tests.push.test_push import (  # noqa: F401 (fixtures)
    free_port, plain_contacts, project_env, target, webserver)

SECRET = new_secret()


def serve(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free port, in a thread; its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def signed(body: bytes, *, secret: str = SECRET, msg_id: str | None = None,
           at: dt.datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of ``body``, as a sender computes them."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or dt.datetime.now(dt.timezone.utc)
    return {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode())}


@pytest.fixture
def offline_receiver() -> Iterator[str]:
    """A receiver whose Dagster instance is not there (a closed port)."""
    launcher = Launcher(f"http://127.0.0.1:{free_port()}", "contacts_api", timeout_s=5)
    yield from serve(receiver_app(signer=Webhook(SECRET), launcher=launcher, max_bytes=20_000))


def test_what_is_not_a_signed_push_is_refused_before_any_launch(offline_receiver: str) -> None:
    url = f"{offline_receiver}/imports/bulk"
    body = json.dumps({"contacts": [{"email": "a@example.org"}]}).encode()

    def post(data: bytes, headers: dict[str, str]) -> tuple[int, str]:
        answer = requests.post(url, data=data, headers=headers, timeout=30)
        return answer.status_code, answer.json()["error"] if answer.status_code != 202 else ""

    assert post(body, {"content-type": "application/json"})[0] == 401
    assert post(body, signed(body, secret=new_secret())) == (401, "signature: No matching signature found")
    stale = signed(body, at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10))
    assert post(body, stale) == (401, "signature: Message timestamp too old")
    tampered = signed(body)
    assert post(body.replace(b"a@", b"b@"), tampered)[0] == 401
    assert post(b"contacts=1", signed(b"contacts=1"))[0] == 400
    wrong = json.dumps({"records": []}).encode()
    assert post(wrong, signed(wrong)) == (422, "unknown key records in the push (keys: contacts, duplicate_strategy,"
                                               " duplicate_match_fields, external_id)")
    big = json.dumps({"contacts": [{"email": f"p{i}@example.org"} for i in range(2000)]}).encode()
    assert post(big, signed(big))[0] == 413
    status, error = post(body, signed(body))
    assert status == 502 and "did not answer" in error
    assert requests.get(f"{offline_receiver}/health", timeout=10).json() == {"status": "ok", "job": "contacts_api_import"}


def test_a_signed_push_launches_one_run_however_often_it_is_delivered(webserver: str, target: str) -> None:
    from dagster_graphql import DagsterGraphQLClient

    app = receiver_app(signer=Webhook(SECRET), launcher=Launcher(webserver, "contacts_api"))
    body = json.dumps({"contacts": plain_contacts(25), "external_id": "hook-3"}).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    for url in serve(app):
        first = requests.post(f"{url}/imports/bulk", data=body, headers=signed(body, msg_id=msg_id), timeout=120)
        assert first.status_code == 202, first.text
        run_id = first.json()["run_id"]
        assert first.json()["run_url"] == f"{webserver}/runs/{run_id}"
        # the sender retries the same message (a new timestamp and signature): the same run, not a second
        again = requests.post(f"{url}/imports/bulk", data=body, headers=signed(body, msg_id=msg_id), timeout=120)
        assert (again.status_code, again.json()["run_id"], again.json()["duplicate"]) == (200, run_id, True)
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(webserver.rsplit(":", 1)[1]))
    deadline = time.monotonic() + 240
    while (status := client.get_run_status(run_id).value) not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(1)
    assert status == "SUCCESS"
    tags = requests.post(f"{webserver}/graphql", timeout=30, json={
        "query": "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }",
        "variables": {"id": run_id}}).json()["data"]["runOrError"]["tags"]
    assert {WEBHOOK_ID_TAG: msg_id, PUSH_TAG: "hook-3"}.items() <= {t["key"]: t["value"] for t in tags}.items()
    with connection(target) as conn:
        assert conn.execute("SELECT count(*) FROM customer_users").fetchone()[0] == 25
        assert conn.execute("SELECT count(DISTINCT run_id) FROM import_control.import_records").fetchone()[0] == 1
