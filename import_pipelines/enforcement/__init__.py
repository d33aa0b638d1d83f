"""Enforcement, a case-management application (cases, the notices served on them, offenders): a second import target."""

from import_pipelines.enforcement.migrate import migrate

__all__ = ["migrate"]
