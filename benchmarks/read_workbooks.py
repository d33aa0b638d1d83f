"""Compare workbook readers on the same 15-column contacts sheet: python-calamine against the rest.

    python benchmarks/read_workbooks.py [--rows 20000] [--repeat 3]

Writes the rows of ``benchmarks/read_files.py`` as .xlsx (openpyxl), .xls (xlwt) and .ods
(odfpy), then reads every row of each file with each reader that handles its format, each in
a fresh process: python-calamine (``iter_rows``) for all three, openpyxl's read-only mode for
.xlsx, xlrd for .xls, odfpy (through pandas, its only row reader) for .ods. Prints one JSON line:
per format and reader, the median rows/s and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from read_files import COLUMNS, contact, peak_rss_mb, progress, run_in_child  # noqa: E402

READERS = {"xlsx": ["calamine", "openpyxl"], "xls": ["calamine", "xlrd"], "ods": ["calamine", "odfpy"]}


def write(folder: Path, rows: int) -> dict[str, Path]:
    import openpyxl
    import pandas as pd
    import xlwt

    data = [contact(number) for number in range(1, rows + 1)]
    paths = {kind: folder / f"contacts.{kind}" for kind in READERS}
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Contacts")
    sheet.append(COLUMNS)
    for row in data:
        sheet.append(row)
    workbook.save(paths["xlsx"])
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Contacts")
    for index, row in enumerate([COLUMNS, *data]):
        for column, value in enumerate(row):
            sheet.write(index, column, value)
    book.save(str(paths["xls"]))
    pd.DataFrame(data, columns=COLUMNS).to_excel(paths["ods"], engine="odf", index=False, sheet_name="Contacts")
    return paths


def read(reader: str, path: str, queue: multiprocessing.Queue) -> None:
    started = time.perf_counter()
    count = 0
    if reader == "calamine":
        from python_calamine import CalamineWorkbook

        with CalamineWorkbook.from_path(path) as workbook:
            count = sum(1 for _ in workbook.get_sheet_by_index(0).iter_rows())
    elif reader == "openpyxl":
        import openpyxl

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        count = sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
        workbook.close()
    elif reader == "xlrd":
        import xlrd

        sheet = xlrd.open_workbook(path, on_demand=True).sheet_by_index(0)
        count = sum(1 for index in range(sheet.nrows) if sheet.row_values(index) is not None)
    else:
        import pandas as pd

        count = len(pd.read_excel(path, engine="odf", header=None))
    queue.put((count, time.perf_counter() - started, peak_rss_mb()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result: dict = {"rows": args.rows, "columns": len(COLUMNS)}
    with tempfile.TemporaryDirectory(prefix="read_workbooks_") as folder:
        progress(f"writing {args.rows:,} rows as .xlsx, .xls and .ods")
        paths = write(Path(folder), args.rows)
        for kind, readers in READERS.items():
            for reader in readers:
                runs = [run_in_child(read, reader, str(paths[kind])) for _ in range(args.repeat)]
                result[f"{kind}_{reader}"] = {"rows_per_s": round(statistics.median(c / s for c, s, _ in runs)),
                                              "peak_rss_mb": round(max(rss for _, _, rss in runs), 1)}
                progress(f"{kind} {reader}: {result[f'{kind}_{reader}']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
