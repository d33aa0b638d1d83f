"""Command line for the mirror: ``mirror``, ``export`` and ``import`` subcommands.

    python -m import_pipelines mirror --mode upsert --tables users,projects
    python -m import_pipelines export backup.tar.gz
    python -m import_pipelines import backup.tar.gz --mode create_only

Database URLs come from ``--source-url`` / ``--target-url`` or, by default, from the
``IMPORT_PIPELINES_SOURCE_URL`` / ``IMPORT_PIPELINES_TARGET_URL`` environment variables; they are
never printed. The report is printed as JSON. Exit status: 0 when every row loaded, 1 when the
run finished with failed rows (see the report's errors), 2 when the run was refused or failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from import_pipelines.settings import SOURCE_URL_ENV, TARGET_URL_ENV

EXIT_OK, EXIT_FAILED_ROWS, EXIT_ERROR = 0, 1, 2


def _tables(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the three subcommands."""
    parser = argparse.ArgumentParser(prog="import_pipelines", description="Copy a database into a live target, or "
                                     "through an id-independent archive.")
    commands = parser.add_subparsers(dest="command", required=True)

    def source(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--source-url", help=f"source database URL (default: ${SOURCE_URL_ENV})")

    def target(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--target-url", help=f"target database URL (default: ${TARGET_URL_ENV})")

    def common(sub: argparse.ArgumentParser, *, loads: bool) -> None:
        sub.add_argument("--tables", type=_tables, help="comma-separated tables (default: all)")
        sub.add_argument("--overrides", help="YAML file naming natural keys: '{table}: [column, ...]'")
        sub.add_argument("--schema", default="public", help="database schema (default: public)")
        if loads:
            sub.add_argument("--mode", choices=["create_only", "upsert"], default="upsert",
                             help="create_only skips rows the target has; upsert also updates them (default)")
            sub.add_argument("--batch-rows", type=int, default=None, help="rows per batch transaction")
            sub.add_argument("--workers", type=int, default=None, help="tables loaded at the same time")
            sub.add_argument("--run-id", default=None, help="run id for the audit rows (default: random)")

    mirror = commands.add_parser("mirror", help="copy every table of the source into the target")
    source(mirror)
    target(mirror)
    common(mirror, loads=True)

    export = commands.add_parser("export", help="write the source to a .tar.gz archive")
    export.add_argument("path", help="archive file to write")
    source(export)
    common(export, loads=False)

    load = commands.add_parser("import", help="load a .tar.gz archive into the target")
    load.add_argument("path", help="archive file to read")
    target(load)
    common(load, loads=True)
    return parser


def _url(given: str | None, *, env: str, flag: str) -> str:
    url = given or os.environ.get(env)
    if not url:
        raise SystemExit(f"no database URL: pass {flag} or set {env}")
    return url


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; print its report as JSON; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    from import_pipelines.mirror import MirrorError, export_archive, import_archive, mirror

    options = {}
    if args.command != "export":
        options = {key: value for key, value in (("batch_rows", args.batch_rows), ("workers", args.workers))
                   if value is not None}
    try:
        if args.command == "mirror":
            report = mirror(_url(args.source_url, env=SOURCE_URL_ENV, flag="--source-url"),
                            _url(args.target_url, env=TARGET_URL_ENV, flag="--target-url"), mode=args.mode,
                            tables=args.tables, overrides=args.overrides, schema=args.schema, run_id=args.run_id,
                            **options)
        elif args.command == "import":
            report = import_archive(args.path, _url(args.target_url, env=TARGET_URL_ENV, flag="--target-url"),
                                    mode=args.mode,
                                    tables=args.tables, overrides=args.overrides, schema=args.schema,
                                    run_id=args.run_id, **options)
        else:
            manifest = export_archive(_url(args.source_url, env=SOURCE_URL_ENV, flag="--source-url"), args.path,
                                      tables=args.tables, overrides=args.overrides, schema=args.schema)
            print(json.dumps({"path": args.path, "tables": [
                {"table": t.name, "rows": t.rows, "sha256": t.sha256} for t in manifest.tables],
                "schema_fingerprint": manifest.schema_fingerprint}))
            return EXIT_OK
    except MirrorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(report.as_dict(), default=str))
    return EXIT_FAILED_ROWS if report.error_count else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
