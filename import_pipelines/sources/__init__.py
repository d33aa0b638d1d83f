"""Source adapters: what reads one kind of source into staging.

A PostgreSQL source pushes the mapping down into one compiled SELECT (:mod:`import_pipelines.extract`).
Every other kind (files, sheets, pushed JSON, Airtable, HTTP APIs) is a :class:`RecordSource`:
an iterator of :class:`SourceRecord`, which the staging writer turns into rows of the entity's
staging table. Everything after staging is the same for every kind of source.

API sources (:class:`AirtableSource`, :class:`HttpApiSource`) also leave a :class:`ReadReport`
after a read: the high-water mark for incremental reads, whether the read was complete, and
what the requests cost (waits after 429s, retries).
"""

from import_pipelines.sources.airtable import AirtableConfig, AirtableSource
from import_pipelines.sources.api_read import ReadReport
from import_pipelines.sources.http_api import HttpApiConfig, HttpApiSource
from import_pipelines.sources.http_session import RetryPolicy
from import_pipelines.sources.records import RecordSource, SourceError, SourceRecord

__all__ = ["AirtableConfig", "AirtableSource", "HttpApiConfig", "HttpApiSource", "ReadReport", "RecordSource",
           "RetryPolicy", "SourceError", "SourceRecord"]
