"""Dagster components of this project (the YAML factories behind ``defs/*/defs.yaml``)."""

from import_pipelines.components.profile import ImportProfile

__all__ = ["ImportProfile"]
