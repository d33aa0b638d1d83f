"""Fixtures: a seeded source and an empty target of the test schema (see ``schema.py``)."""

from __future__ import annotations

import pytest

from import_pipelines_tests.mirror.schema import create_schema


@pytest.fixture
def seeded_source(source_url: str) -> str:
    """The source database with the test schema and its rows."""
    create_schema(source_url, seed=True)
    return source_url


@pytest.fixture
def empty_target(target_url: str) -> str:
    """The target with the same schema, empty, its sequences far from the source's ids."""
    create_schema(target_url, sequence_offset=5000)
    return target_url
