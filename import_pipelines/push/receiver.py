"""``python -m import_pipelines push-server``: receive signed bulk pushes over HTTP and launch their runs.

Another system posts the seed API's body (``contacts``, ``duplicate_strategy``,
``duplicate_match_fields``, ``external_id``) to ``POST /imports/bulk``, signed by the Standard
Webhooks specification (the same scheme as the project's own run notifications,
:mod:`import_pipelines.webhooks`): ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
under a shared secret (``whsec_...``, from an environment variable). The server answers at once:

| answer | when |
|---|---|
| 202 ``{"run_id", "job", "run_url"}`` | the run was submitted to the Dagster instance through its GraphQL API |
| 200 ``{"run_id", "job", "run_url", "duplicate": true}`` | a message id already submitted: the same run, not a second one |
| 401 | a missing or wrong signature, or a timestamp more than five minutes off (a replay) |
| 400 / 422 | not JSON / not a push (the message says what: an unknown key, no records, a strategy) |
| 413 | a body over ``--max-mb`` |
| 502 | the Dagster instance did not take the run (its message) |

Every launched run carries the tags ``import_pipelines/webhook-id`` (how a repeated delivery is
found: the sender's retries never import twice) and ``import_pipelines/push`` (the
``external_id``). Nothing of the body is logged. The server is Starlette under uvicorn (both come
with the Dagster webserver); submissions go one at a time, so two deliveries of one message
racing each other still make one run.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import requests
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from standardwebhooks.webhooks import Webhook

WEBHOOK_ID_TAG = "import_pipelines/webhook-id"
PUSH_TAG = "import_pipelines/push"
DEFAULT_MAX_MB = 64
_RUNS_BY_TAG = """
query RunsByTag($filter: RunsFilter) {
  runsOrError(filter: $filter, limit: 1) { ... on Runs { results { runId } } ... on PythonError { message } }
}"""


class LaunchFailed(RuntimeError):
    """The Dagster instance did not take the run (the message says why)."""


@dataclass(frozen=True)
class Launcher:
    """Submits a profile's push job to a running Dagster instance through its GraphQL API."""

    dagster_url: str
    profile: str
    timeout_s: float = 30.0

    @property
    def job(self) -> str:
        return f"{self.profile}_import"

    @property
    def base_url(self) -> str:
        """The instance's URL, ``http://`` when it names no scheme, without a trailing slash."""
        url = self.dagster_url if "://" in self.dagster_url else f"http://{self.dagster_url}"
        return url.rstrip("/")

    def run_url(self, run_id: str) -> str:
        return f"{self.base_url}/runs/{run_id}"

    def submitted(self, msg_id: str) -> str | None:
        """The run already submitted for message ``msg_id``, if any."""
        try:
            answer = requests.post(f"{self.base_url}/graphql", timeout=self.timeout_s, json={
                "query": _RUNS_BY_TAG, "variables": {"filter": {"tags": [{"key": WEBHOOK_ID_TAG, "value": msg_id}]}}})
            answer.raise_for_status()
            found = answer.json()["data"]["runsOrError"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise LaunchFailed(f"the Dagster instance at {self.dagster_url} did not answer: {error}") from None
        if "results" not in found:
            raise LaunchFailed(f"the Dagster instance could not list runs: {found.get('message', found)}")
        return found["results"][0]["runId"] if found["results"] else None

    def client(self):
        """Dagster's GraphQL client of the instance (a URL without a scheme is taken as http)."""
        from urllib.parse import urlsplit

        from dagster_graphql import DagsterGraphQLClient

        parts = urlsplit(self.base_url)
        return DagsterGraphQLClient(parts.hostname or "127.0.0.1", port_number=parts.port,
                                    use_https=parts.scheme == "https", timeout=int(self.timeout_s))

    def launch(self, config: dict[str, Any], tags: dict[str, str]) -> str:
        """Submit the job with ``config``; its run id."""
        from dagster_graphql import DagsterGraphQLClientError

        try:
            return self.client().submit_job_execution(self.job, run_config=config, tags=tags)
        except (DagsterGraphQLClientError, requests.RequestException) as error:
            raise LaunchFailed(f"{self.job} was not launched: {error}") from None


def receiver_app(*, signer: Webhook, launcher: Launcher, max_bytes: int = DEFAULT_MAX_MB << 20) -> Starlette:
    """The HTTP application (see the module); ``signer`` holds the shared secret
    (:func:`import_pipelines.webhooks.signer_from_env`)."""
    from standardwebhooks.webhooks import WebhookVerificationError

    from import_pipelines.push.request import push_run_config

    one_at_a_time = asyncio.Lock()

    async def bulk(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            return _error(413, f"the body is {int(declared):,} bytes; at most {max_bytes:,} are taken")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                return _error(413, f"the body is over {max_bytes:,} bytes")
        try:
            text = body.decode("utf-8")
            signer.verify(text, dict(request.headers), json_parse=False)
        except (WebhookVerificationError, UnicodeDecodeError, ValueError) as error:
            return _error(401, f"signature: {error or 'not verified'}")
        try:
            payload = json.loads(text)
        except ValueError as error:
            return _error(400, f"the body is not JSON: {error}")
        try:
            config = push_run_config(launcher.profile, payload)
        except ValueError as error:
            return _error(422, str(error))
        msg_id = request.headers["webhook-id"]
        tags = {WEBHOOK_ID_TAG: msg_id}
        if payload.get("external_id") is not None:
            tags[PUSH_TAG] = str(payload["external_id"])
        async with one_at_a_time:
            try:
                earlier = await run_in_threadpool(launcher.submitted, msg_id)
                run_id = earlier or await run_in_threadpool(launcher.launch, config, tags)
            except LaunchFailed as error:
                return _error(502, str(error))
        answer = {"run_id": run_id, "job": launcher.job, "run_url": launcher.run_url(run_id)}
        return JSONResponse({**answer, "duplicate": True} if earlier else answer, status_code=200 if earlier else 202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "job": launcher.job})

    return Starlette(routes=[Route("/imports/bulk", bulk, methods=["POST"]), Route("/health", health)])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
