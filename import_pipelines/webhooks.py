"""Signed notifications of a finished import run, sent to the systems that want to know.

A profile's ``notify`` lists endpoints; when one of its runs succeeds, fails or is cancelled, a run
status sensor (:mod:`import_pipelines.components.notify`) posts one JSON message per endpoint:

```json
{"type": "import.run.succeeded", "timestamp": "2026-11-30T08:40:12Z",
 "data": {"run_id": "...", "job": "contacts_api_import", "profile": "contacts_api", "status": "SUCCESS",
          "started_at": "...", "ended_at": "...", "external_id": "crm-batch-0042",
          "streams": [{"entity": "contacts", "target_table": "public.customer_users", "source_rows": 200,
                       "created": 197, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 3}],
          "errors": 3, "failures": []}}
```

``streams`` are the run's summaries (``import_control.run_summaries``: what the run did per entity,
the numbers the reconciliation checks compare), ``errors`` its rejected-row problems
(``import_errors``), ``external_id`` the pushing system's id of a bulk push, ``failures`` the failed
steps and their messages (secrets masked).

The messages follow the Standard Webhooks specification (standardwebhooks.com), signed by its
reference library: headers ``webhook-id`` (one per run, event and endpoint, the same on every
retry, so a receiver drops a repeat), ``webhook-timestamp`` and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` under the endpoint's secret, ``whsec_...``
read from the environment variable the profile names). Receivers verify with any Standard
Webhooks library (``standardwebhooks.Webhook(secret).verify(body, headers)`` in Python), which
also refuses a timestamp more than five minutes off (a replayed message).

Delivery retries a dropped connection, a timeout, a 429 (after its ``Retry-After``) and a 5xx
with exponential backoff (the API sources' :class:`~import_pipelines.sources.http_session.PoliteSession`),
for at most :data:`ATTEMPTS` attempts and :data:`GIVE_UP_S` seconds (:data:`POLICY`). Every delivery is recorded in
``import_control.webhook_deliveries`` (endpoint without query string or credentials, answer,
attempts, error); a message already answered 2xx is not sent again when a sensor tick is repeated.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator
from standardwebhooks.webhooks import Webhook

from import_pipelines.sources.http_session import PoliteSession, RequestFailed, RetryPolicy

Event = Literal["succeeded", "failed", "canceled"]
EVENTS: tuple[Event, ...] = ("succeeded", "failed", "canceled")
ATTEMPTS = 5
GIVE_UP_S = 60.0
TIMEOUT_S = (5.0, 15.0)  # connect, read
MIN_SECRET_BYTES = 24  # the Standard Webhooks specification's secrets are 24 to 64 random bytes
POLICY = RetryPolicy(max_attempts=ATTEMPTS, max_elapsed_s=GIVE_UP_S, rate_limit_penalty_s=5.0, backoff_s=1.0,
                      backoff_max_s=15.0, jitter_s=0.5, retry_statuses=(500, 502, 503, 504))

Log = Callable[[str], None]


class WebhookError(ValueError):
    """An endpoint that cannot be used as configured (the message names the variable)."""


class WebhookEndpoint(BaseModel):
    """One receiver of a profile's run notifications."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(default=None, description="the endpoint (use url_env when it carries a token)")
    url_env: str | None = Field(default=None, description="environment variable holding the endpoint")
    secret_env: str = Field(description="environment variable holding the signing secret (whsec_<base64>)")
    events: list[Event] = Field(default_factory=lambda: ["succeeded", "failed"],
                                description="which ends of a run are sent: succeeded, failed, canceled")

    @model_validator(mode="after")
    def _one_url(self) -> WebhookEndpoint:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a notify endpoint needs exactly one of url and url_env")
        if not self.events:
            raise ValueError("a notify endpoint needs at least one of the events succeeded, failed, canceled")
        return self

    def resolved_url(self) -> str:
        """The endpoint's URL (from the environment when ``url_env``)."""
        url = self.url if self.url is not None else os.environ.get(self.url_env or "", "")
        if not url:
            raise WebhookError(f"the notify endpoint's environment variable {self.url_env} is not set")
        if urlsplit(url).scheme not in ("http", "https"):
            raise WebhookError(f"the notify endpoint {shown_endpoint(url)} is not an http(s) URL")
        return url

    def signer(self) -> Webhook:
        """The Standard Webhooks signer under the secret in ``secret_env``."""
        return signer_from_env(self.secret_env, what="notify secret")


@dataclass(frozen=True)
class Delivery:
    """What became of one message to one endpoint."""

    webhook_id: str
    endpoint: str
    status_code: int | None
    attempts: int
    error: str | None
    already_delivered: bool = False

    @property
    def delivered(self) -> bool:
        return self.already_delivered or (self.status_code is not None and 200 <= self.status_code < 300)


def signer_from_env(variable: str, *, what: str) -> Webhook:
    """The Standard Webhooks signer (and verifier) under the secret held by the environment ``variable``."""
    secret = os.environ.get(variable, "").strip()  # a secret read from a file often ends in a newline
    if not secret:
        raise WebhookError(f"the {what}'s environment variable {variable} is not set"
                           " (python -m import_pipelines webhook-secret prints a new one)")
    # the library decodes leniently (characters outside base64 are dropped, so a mistyped secret
    # becomes a few bytes that no sender signs with); the secret is checked strictly first
    body = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        key = b""
    if len(key) < MIN_SECRET_BYTES:
        raise WebhookError(f"the {what} in {variable} is not a Standard Webhooks secret: whsec_ followed by the"
                           f" base64 of at least {MIN_SECRET_BYTES} random bytes"
                           " (python -m import_pipelines webhook-secret prints a new one)")
    return Webhook(key)  # the checked key itself: the library's own decoding is the lenient one


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form (24 random bytes)."""
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode()


def shown_endpoint(url: str) -> str:
    """The endpoint as logged and recorded: scheme, host, port and path; no credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, parts.path, "", ""))


def webhook_id(run_id: str, event: str, url: str) -> str:
    """The message's id: the same for a run, an event and an endpoint, whichever tick sends it."""
    return "msg_" + hashlib.sha256(f"{run_id}\x1f{event}\x1f{url}".encode()).hexdigest()[:32]


def message(event: Event, data: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The Standard Webhooks envelope of a run's end."""
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return {"type": f"import.run.{event}", "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": data}


def run_streams(conn: psycopg.Connection, run_id: str) -> tuple[list[dict[str, Any]], int]:
    """What the run did per entity (its summaries) and how many rejected-row problems it recorded."""
    cur = conn.execute(
        "SELECT s.entity, s.target_table, m.source_rows, m.created, m.updated, m.unchanged, m.skipped, m.failed"
        " FROM import_control.runs AS r JOIN import_control.run_summaries AS m USING (run_seq)"
        " JOIN import_control.streams AS s USING (stream_id) WHERE r.run_id = %s ORDER BY s.entity", (run_id,))
    names = [column.name for column in cur.description]
    streams = [dict(zip(names, row)) for row in cur.fetchall()]
    errors = conn.execute("SELECT count(*) FROM import_control.import_errors WHERE run_id = %s", (run_id,)).fetchone()
    return streams, errors[0]


def deliver(endpoint: WebhookEndpoint, event: Event, body: dict[str, Any], *, run_id: str, profile: str,
            conn: psycopg.Connection | None, log: Log = print, policy: RetryPolicy = POLICY) -> Delivery:
    """Sign and post ``body`` to the endpoint, retrying transient failures by ``policy``; record the outcome
    when ``conn``."""
    url = endpoint.resolved_url()
    signer = endpoint.signer()
    shown = shown_endpoint(url)
    msg_id = webhook_id(run_id, event, url)
    if conn is not None and _already_delivered(conn, msg_id):
        return Delivery(msg_id, shown, None, 0, None, already_delivered=True)
    payload = json.dumps(body, separators=(",", ":"), default=str)
    sent_at = dt.datetime.now(dt.timezone.utc)
    headers = {"content-type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(int(sent_at.timestamp())),
               "webhook-signature": signer.sign(msg_id, sent_at, payload),
               "user-agent": "import_pipelines-webhooks"}
    parts = urlsplit(url)
    secrets = tuple(part for part in (parts.query, parts.password, parts.username) if part)
    with PoliteSession(policy=policy, limiter=None, secrets=secrets, log=log, label=f"notify {shown}") as session:
        try:
            answer = session.post(url, data=payload.encode(), headers=headers, timeout=TIMEOUT_S)
            status, error = answer.status_code, None if answer.ok else f"HTTP {answer.status_code} {answer.reason}"
        except RequestFailed as failure:
            status, error = None, str(failure)
        except requests.RequestException as failure:  # an invalid URL, too many redirects: not retried
            status, error = None, session.redact(f"{type(failure).__name__}: {failure}")
        attempts = session.stats.requests
    delivery = Delivery(msg_id, shown, status, attempts, error)
    if conn is not None:
        _record(conn, delivery, run_id=run_id, profile=profile, event=event)
    log(f"notify {shown} of run {run_id} {event}: "
        + (f"delivered (HTTP {status}, {attempts} attempts)" if delivery.delivered else f"NOT delivered: {error}"))
    return delivery


def deliver_all(endpoints: Sequence[WebhookEndpoint], event: Event, data: dict[str, Any], *, run_id: str,
                profile: str, conn: psycopg.Connection | None, log: Log = print) -> list[Delivery]:
    """Send the run's ``event`` to every endpoint that asked for it; one endpoint's failure does not stop the rest."""
    body = message(event, data)
    return [deliver(endpoint, event, body, run_id=run_id, profile=profile, conn=conn, log=log)
            for endpoint in endpoints if event in endpoint.events]


def _already_delivered(conn: psycopg.Connection, msg_id: str) -> bool:
    return conn.execute("SELECT 1 FROM import_control.webhook_deliveries WHERE webhook_id = %s"
                        " AND delivered_at IS NOT NULL", (msg_id,)).fetchone() is not None


def _record(conn: psycopg.Connection, delivery: Delivery, *, run_id: str, profile: str, event: str) -> None:
    conn.execute(
        "INSERT INTO import_control.webhook_deliveries AS d (webhook_id, run_id, profile, event, endpoint,"
        " status_code, attempts, error, delivered_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
        " CASE WHEN %s THEN now() END)"
        " ON CONFLICT (webhook_id) DO UPDATE SET status_code = excluded.status_code,"
        " attempts = d.attempts + excluded.attempts, error = excluded.error, delivered_at = excluded.delivered_at,"
        " recorded_at = now()",
        (delivery.webhook_id, run_id, profile, event, delivery.endpoint, delivery.status_code, delivery.attempts,
         delivery.error, delivery.delivered))
