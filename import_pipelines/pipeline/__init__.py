"""The steps of one entity's import (extract, map, dedupe, load), callable with or without Dagster."""

from import_pipelines.pipeline.steps import EntityRun, LoadResult, Staged, dedupe, extract, load, map_and_validate

__all__ = ["EntityRun", "LoadResult", "Staged", "dedupe", "extract", "load", "map_and_validate"]
