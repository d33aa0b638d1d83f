"""Source adapters: what reads one kind of source into staging.

A PostgreSQL source pushes the mapping down into one compiled SELECT (:mod:`import_pipelines.extract`).
Every other kind (files, sheets, pushed JSON, Airtable, HTTP APIs) is a :class:`RecordSource`:
an iterator of :class:`SourceRecord`, which the staging writer turns into rows of the entity's
staging table. Everything after staging is the same for every kind of source.

Files: :func:`open_file` opens a CSV, Excel / OpenDocument or JSON file by its content;
:func:`sample_file` gives its headers and first records for mapping. Google Sheets:
:class:`GoogleSheetSource`, :func:`sheet_modified_time`. Table-shaped readers (CSV, workbooks,
sheets) also offer ``rows()``: ``(line, cells, error)`` without a dict per row, for a bulk writer,
and a :class:`LayoutReport` (where the header, preamble and footer lines were). The libraries
behind them are imported only when a file is read.

API sources (:class:`AirtableSource`, :class:`HttpApiSource`) leave a :class:`ReadReport` after
a read: the high-water mark for incremental reads, whether the read was complete, and what the
requests cost (waits after 429s, retries).
"""

from import_pipelines.sources.airtable import AirtableConfig, AirtableSource
from import_pipelines.sources.api_read import ReadReport
from import_pipelines.sources.csv_file import CsvSource
from import_pipelines.sources.excel import ExcelSource
from import_pipelines.sources.files import SourceSample, detect_kind, open_file, sample_file, sample_source
from import_pipelines.sources.http_api import HttpApiConfig, HttpApiSource
from import_pipelines.sources.http_session import RetryPolicy
from import_pipelines.sources.json_file import JsonSource
from import_pipelines.sources.records import RecordSource, SourceError, SourceRecord
from import_pipelines.sources.sheets import GoogleSheetSource, sheet_modified_time, sheets_client
from import_pipelines.sources.tabular import FOOTER_ERROR, LayoutReport

__all__ = [
    "FOOTER_ERROR", "AirtableConfig", "AirtableSource", "CsvSource", "ExcelSource", "GoogleSheetSource",
    "HttpApiConfig", "HttpApiSource", "JsonSource", "LayoutReport", "ReadReport", "RecordSource", "RetryPolicy",
    "SourceError", "SourceRecord", "SourceSample", "detect_kind", "open_file", "sample_file", "sample_source",
    "sheet_modified_time", "sheets_client",
]
