"""Fixtures of the source tests: fake servers stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from import_pipelines.demo.fake_http import FakeHttpServer

Fake = TypeVar("Fake", bound=FakeHttpServer)


MAX_REQUESTS_PER_SECOND = 5  # Airtable's limit per base, kept by every test against every fake


@pytest.fixture
def running() -> Iterator[Callable[[Fake], Fake]]:
    """``running(fake)`` starts a fake server and returns it; every one is stopped after the test.

    After the test, each fake must have seen at most 5 requests of one scope (an Airtable base, an
    API host) in any one second: no test is allowed to be impolite, whatever it asserts itself.
    """
    started: list[FakeHttpServer] = []

    def start(fake: Fake) -> Fake:
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
    for fake in started:
        for scope in fake.arrivals:
            assert fake.max_requests_in_window(scope) <= MAX_REQUESTS_PER_SECOND, (
                f"{type(fake).__name__} saw {fake.max_requests_in_window(scope)} requests of {scope!r} in one second")
