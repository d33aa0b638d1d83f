"""Source adapters: what reads one kind of source into staging.

A PostgreSQL source pushes the mapping down into one compiled SELECT (:mod:`import_pipelines.extract`).
Every other kind (files, sheets, pushed JSON, Airtable, HTTP APIs) is a :class:`RecordSource`:
an iterator of :class:`SourceRecord`, which the staging writer turns into rows of the entity's
staging table. Everything after staging is the same for every kind of source.
"""

from import_pipelines.sources.records import RecordSource, SourceError, SourceRecord

__all__ = ["RecordSource", "SourceError", "SourceRecord"]
