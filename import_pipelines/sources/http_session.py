"""The HTTP session every API source reads through: rate-limited, retried, counted, and discreet.

:class:`PoliteSession` is a ``requests.Session`` whose ``send`` does, for every request (each
page, each retry, each redirect):

1. take a slot from the scope's :class:`~import_pipelines.sources.ratelimit.RateLimiter`;
2. send; a 429 is answered by waiting the server's ``Retry-After`` or, when it names none, the
   configured penalty (Airtable's is 30 s), *plus* an exponential backoff with jitter, and the
   penalty holds every reader of the scope, not just this one; a dropped connection, a timeout
   or a 5xx is answered by the backoff alone; both are bounded in attempts and in elapsed time;
3. count what happened (:class:`RequestStats`), so the run's log can say how often it waited.

The retry loop is tenacity's (stop, wait and hook strategies); this module only says which
failures are transient and what the wait after a 429 is. Retrying inside ``send`` retries the
very request that failed, so a paginating reader resumes at the page that failed (the same
``offset`` or cursor), never at page 1. The session serves reads, which is why a POST (the
Airtable ``listRecords`` form of a long GET) is retried like a GET, and the signed run
notifications (:mod:`import_pipelines.webhooks`), whose POST is safe to repeat because every
attempt carries the same ``webhook-id`` and a receiver drops one it has seen.

The token travels only in a request header. Every message this module writes, logged or raised,
goes through :meth:`PoliteSession.redact` first, which replaces the token wherever a server or a
``next`` link may have echoed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
import tenacity
from pydantic import BaseModel, ConfigDict, Field

from import_pipelines.sources.ratelimit import RateLimiter
from import_pipelines.sources.records import SourceError

Log = Callable[[str], None]

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError,  # refused, reset, closed without an answer
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # closed in the middle of the body
)


class RetryPolicy(BaseModel):
    """How an API source answers a 429, a dropped connection or a 5xx: wait, then try the same request again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=8, ge=1, description="attempts per request, the first included")
    max_elapsed_s: float = Field(default=600.0, gt=0, description="give a request up after this long, waits included")
    rate_limit_penalty_s: float = Field(default=30.0, ge=0,
                                        description="wait after a 429 without Retry-After (Airtable's penalty is 30 s)")
    backoff_s: float = Field(default=1.0, ge=0, description="first exponential backoff step, doubled per retry")
    backoff_max_s: float = Field(default=60.0, ge=0, description="cap of one backoff step")
    jitter_s: float = Field(default=1.0, ge=0, description="random extra wait, 0 to this, per retry")
    retry_statuses: tuple[int, ...] = Field(default=(500, 502, 503, 504),
                                            description="server errors answered by backoff and retry (429 always is)")


@dataclass
class RequestStats:
    """What the requests of one read cost: counters a caller logs and records as metadata."""

    requests: int = 0  # HTTP requests sent, retries included
    rate_limited: int = 0  # 429 answers, each answered by waiting
    retried_errors: int = 0  # dropped connections, timeouts and 5xx answers, each retried after a backoff
    waited_s: float = 0.0  # seconds slept before retries: penalties and backoff
    throttled_s: float = 0.0  # seconds waited for the client-side rate limiter
    request_s: float = 0.0  # seconds inside HTTP requests: sending, the server's time, reading the body

    def as_dict(self) -> dict[str, Any]:
        """The counters, seconds rounded to milliseconds."""
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()}


class RequestFailed(SourceError):
    """A request that still failed after the retry policy's last attempt (the message names it, redacted)."""


class _RetryableStatus(Exception):
    """A response that asks to be retried (429, a 5xx), carried through tenacity's loop."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code} {response.reason}")
        self.response = response


def retry_after_s(response: requests.Response) -> float | None:
    """The wait a server asked for in ``Retry-After`` (seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class PoliteSession(requests.Session):
    """A ``requests.Session`` for reads and idempotent posts that rate-limits, retries and counts every request."""

    def __init__(self, *, policy: RetryPolicy, limiter: RateLimiter | None, secrets: tuple[str, ...] = (),
                 log: Log | None = None, label: str = "source") -> None:
        super().__init__()
        self.policy = policy
        self.limiter = limiter
        self.stats = RequestStats()
        self.label = label
        self.last_url = ""  # of the request sent last, for messages about its answer (redact before use)
        self._log = log or (lambda message: None)
        # the token as sent and as it would appear inside a URL
        self._secrets = tuple({form for secret in secrets if secret for form in (secret, quote(secret, safe=""))})

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the token replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send ``request`` through the limiter, retrying transient failures by the policy."""
        policy = self.policy
        started = time.monotonic()
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((_RetryableStatus, *TRANSIENT_ERRORS)),
            stop=tenacity.stop_after_attempt(policy.max_attempts) | tenacity.stop_after_delay(policy.max_elapsed_s),
            wait=_PenaltyWait(policy) + tenacity.wait_exponential_jitter(
                multiplier=policy.backoff_s, max=policy.backoff_max_s, jitter=policy.jitter_s),
            before_sleep=lambda state: self._before_sleep(state, request),
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                attempts = attempt.retry_state.attempt_number
                with attempt:
                    return self._send_once(request, **kwargs)
        except _RetryableStatus as failure:
            reason = str(failure)
        except TRANSIENT_ERRORS as failure:
            reason = _describe(failure)
        raise RequestFailed(self.redact(f"{request.method} {request.url} gave up after {attempts} attempts"
                                        f" in {time.monotonic() - started:.1f} s: {reason}")) from None

    def _send_once(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.limiter is not None:
            self.stats.throttled_s += self.limiter.acquire()
        self.stats.requests += 1
        self.last_url = request.url or ""
        began = time.monotonic()
        try:
            response = super().send(request, **kwargs)
        finally:
            self.stats.request_s += time.monotonic() - began
        if response.status_code == 429 or response.status_code in self.policy.retry_statuses:
            raise _RetryableStatus(response)
        return response

    def _before_sleep(self, state: tenacity.RetryCallState, request: requests.PreparedRequest) -> None:
        failure = state.outcome.exception()
        seconds = state.next_action.sleep
        self.stats.waited_s += seconds
        if isinstance(failure, _RetryableStatus) and failure.response.status_code == 429:
            self.stats.rate_limited += 1
            if self.limiter is not None:
                self.limiter.hold(seconds)  # every reader of the scope honours the penalty
            why = "rate limited (HTTP 429)"
        else:
            self.stats.retried_errors += 1
            why = str(failure) if isinstance(failure, _RetryableStatus) else _describe(failure)
        self._log(self.redact(f"{self.label}: {why} on {request.method} {request.url}; waiting {seconds:.1f} s"
                              f" before attempt {state.attempt_number + 1} of {self.policy.max_attempts}"))


class _PenaltyWait(tenacity.wait.wait_base):
    """Tenacity wait part: after a 429, the server's Retry-After or the policy's penalty; else nothing."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        if not isinstance(failure, _RetryableStatus) or failure.response.status_code != 429:
            return 0.0
        asked = retry_after_s(failure.response)
        return min(asked, self.policy.max_elapsed_s) if asked is not None else self.policy.rate_limit_penalty_s


def _describe(error: Exception) -> str:
    """A one-line reason for a transport failure."""
    kind = "timed out" if isinstance(error, requests.Timeout) else "connection dropped"
    return f"{kind} ({type(error).__name__}: {error})"
