"""The client-side rate limiter: a sliding window with a margin, a shared penalty, one limiter per scope."""

from __future__ import annotations

import threading
import time

from import_pipelines.sources.ratelimit import RateLimiter, shared_limiter


def starts_within(starts: list[float], window_s: float) -> int:
    """The most starts inside any window of ``window_s``."""
    return max(sum(1 for other in starts if start <= other < start + window_s) for start in starts)


def test_no_more_than_the_limit_start_in_any_window_even_from_several_threads() -> None:
    limiter = RateLimiter(4, margin_s=0.05)
    starts: list[float] = []
    lock = threading.Lock()

    def take(count: int) -> None:
        for _ in range(count):
            limiter.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=take, args=(4,)) for _ in range(3)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(starts) == 12
    assert starts_within(starts, 1.0) == 4
    assert time.monotonic() - began >= 2 * 1.05  # 12 starts at 4 per window: three windows, two waits


def test_a_hold_stops_every_reader_of_the_scope() -> None:
    limiter = RateLimiter(5)
    limiter.acquire()
    limiter.hold(0.3)
    began = time.monotonic()
    assert limiter.acquire() >= 0.25
    assert time.monotonic() - began >= 0.25


def test_readers_of_one_scope_share_one_limiter_at_the_strictest_rate() -> None:
    first = shared_limiter("test:scope-a", 5)
    second = shared_limiter("test:scope-a", 3)
    assert first is second and first.per_second == 3
    assert shared_limiter("test:scope-a", 10).per_second == 3  # never loosened
    assert shared_limiter("test:scope-b", 5) is not first
    assert shared_limiter("test:scope-a", None) is None  # no limit asked: none applied
