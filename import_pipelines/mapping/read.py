"""The sample the mapping commands read: a source's headers and its first good rows.

Read through the project's own sources (:mod:`import_pipelines.sources`), so ``mapping suggest``
and ``mapping presets save`` see a file exactly as an import does: the same encoding, delimiter,
header row (after a preamble) and typed cells of a workbook, the same JSON records, the same
Google Sheet cells. A preset is keyed by the headers: the headers the command saw are the ones
the run will find.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLE_ROWS = 50
_SHEETS_URL = "https://docs.google.com/spreadsheets/"


def read_sample(path: str | Path, sheet: str | None = None, *, rows: int = SAMPLE_ROWS) -> tuple[list[str], list[list[Any]]]:
    """The header row and up to ``rows`` data rows of a file (CSV, Excel, OpenDocument, JSON) or a Google Sheet URL.

    ``sheet`` is the workbook's sheet or the Google Sheet's worksheet (default: the first).
    """
    from import_pipelines.sources.files import open_file, sample_source

    if str(path).startswith(_SHEETS_URL):
        from import_pipelines.sources.sheets import GoogleSheetSource

        source = GoogleSheetSource(str(path), worksheet=sheet)
    else:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
        source = open_file(path, sheet=sheet)
    sample = sample_source(source, rows=rows)
    headers = list(sample.columns)
    return headers, [[row.get(header) for header in headers] for row in sample.rows]
