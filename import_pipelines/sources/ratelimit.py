"""Client-side rate limits for HTTP sources: at most N requests in any window of one second.

Airtable allows 5 requests per second per base and answers more with a 429 and a 30-second
penalty, so the readers never rely on the server to slow them down: every request, retries
included, first takes a slot from the limiter of its scope (an Airtable base, an API host).
The limiters live in one registry per process, so two readers of the same base, in two threads
of one run, share the 5 requests instead of taking 5 each.

The limiter is a sliding window over the last N start times, written here rather than taken
from a library because of two things the readers need together: a *penalty* that holds every
reader of a scope after one of them was told to wait (a 429), and a small safety margin added
to the window. The margin exists because the server counts arrivals, not departures: a request
that reached the server late and the one sent a second after it could otherwise land less than
a second apart.
"""

from __future__ import annotations

import threading
import time
from collections import deque

DEFAULT_MARGIN_S = 0.1


class RateLimiter:
    """At most ``per_second`` request starts in any window of ``1 s + margin_s``; thread-safe."""

    def __init__(self, per_second: int, *, margin_s: float = DEFAULT_MARGIN_S) -> None:
        if per_second < 1:
            raise ValueError(f"a rate limit needs at least 1 request per second, not {per_second}")
        self.per_second = per_second
        self.window_s = 1.0 + margin_s
        self._starts: deque[float] = deque(maxlen=per_second)
        self._hold_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot and take it; return the seconds waited.

        The lock is held while sleeping, so waiting readers take their turns one after another and
        none can slip a request in between another's wait and its start.
        """
        with self._lock:
            waited = 0.0
            while True:
                now = time.monotonic()
                ready = self._hold_until
                if len(self._starts) == self._starts.maxlen:
                    ready = max(ready, self._starts[0] + self.window_s)
                if now >= ready:
                    break
                time.sleep(ready - now)
                waited += ready - now
            self._starts.append(time.monotonic())
            return waited

    def hold(self, seconds: float) -> None:
        """Let no request of this scope start for ``seconds`` from now (a server's penalty)."""
        until = time.monotonic() + seconds
        # not under self._lock: a reader sleeping in acquire() holds it, and the hold must be
        # visible to it the next time it looks (a float store is atomic under the GIL)
        self._hold_until = max(self._hold_until, until)

    def tighten(self, per_second: int) -> None:
        """Lower the limit to ``per_second`` if that is stricter (never raises it)."""
        with self._lock:
            if per_second < self.per_second:
                self.per_second = per_second
                self._starts = deque(self._starts, maxlen=per_second)


_REGISTRY: dict[str, RateLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_limiter(scope: str, per_second: int | None) -> RateLimiter | None:
    """The process-wide limiter of ``scope`` (e.g. ``airtable:<endpoint>/<base>``); None for no limit.

    Readers of one scope asking for different limits share the strictest of them.
    """
    if per_second is None:
        return None
    with _REGISTRY_LOCK:
        limiter = _REGISTRY.get(scope)
        if limiter is None:
            limiter = _REGISTRY[scope] = RateLimiter(per_second)
            return limiter
    limiter.tighten(per_second)
    return limiter
