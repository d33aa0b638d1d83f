"""Fixtures of the source tests: fake servers stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from import_pipelines.demo.fake_http import FakeHttpServer

Fake = TypeVar("Fake", bound=FakeHttpServer)


@pytest.fixture
def running() -> Iterator[Callable[[Fake], Fake]]:
    """``running(fake)`` starts a fake server and returns it; every one is stopped after the test."""
    started: list[FakeHttpServer] = []

    def start(fake: Fake) -> Fake:
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
