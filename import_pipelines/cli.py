"""The command line: set up the demo, run the FreeScout import, serve the Dagster UI; mirror tools.

``python -m import_pipelines demo`` is the whole first-run experience: it starts the embedded
PostgreSQL (unless URLs are configured), generates the FreeScout demo source, migrates the
Service Vault target, runs the ``freescout_demo_import`` job through the Dagster instance (so it
is in the UI's run history) and then serves the UI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from import_pipelines import settings

DEMO_JOB = "freescout_demo_import"


def _dagster_env() -> dict[str, str]:
    settings.ensure_environment()
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(settings.PROJECT_ROOT)
    return env


def _dagster(*args: str) -> list[str]:
    return [os.path.join(os.path.dirname(sys.executable), "dagster"), *args]


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate the FreeScout demo source database."""
    from import_pipelines.demo.freescout import customers_for_rows, generate_freescout

    urls = settings.ensure_environment()
    customers = args.customers or customers_for_rows(args.rows)
    started = time.perf_counter()
    counts = generate_freescout(urls.source, customers=customers, seed=args.seed)
    print(f"demo source: {', '.join(f'{t} {n:,}' for t, n in counts.items())} in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    """Print a new signing secret for a profile's notify endpoint (whsec_...: set it in the variable secret_env names)."""
    from import_pipelines.webhooks import new_secret

    print(new_secret())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the Service Vault schema migrations to the target."""
    from import_pipelines.service_vault import migrate

    applied = migrate(settings.ensure_environment().target)
    print(f"target migrations applied: {', '.join(applied) or 'none pending'}")
    return 0


def _source_has_demo(url: str) -> bool:
    from import_pipelines.db.connect import connection

    with connection(url) as conn:
        return conn.execute("SELECT to_regclass('public.customers') IS NOT NULL").fetchone()[0]


def cmd_demo(args: argparse.Namespace) -> int:
    """Set up the demo, run the FreeScout import through Dagster, then serve the UI."""
    env = _dagster_env()
    urls = settings.ensure_environment()
    if args.regenerate or not _source_has_demo(urls.source):
        cmd_generate(args)
    cmd_migrate(args)
    print(f"running {DEMO_JOB} ...", flush=True)
    result = subprocess.run(_dagster("job", "execute", "-m", "import_pipelines.definitions", "-a", "defs", "-j", DEMO_JOB),
                            cwd=settings.PROJECT_ROOT, env=env)
    if result.returncode != 0:
        print(f"{DEMO_JOB} failed (exit {result.returncode}); the UI shows the run's logs", file=sys.stderr)
        if args.no_ui:
            return result.returncode
    if args.no_ui:
        return 0
    print(f"Dagster UI on http://{args.host}:{args.port}", flush=True)
    os.execve(_dagster()[0], _dagster("dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)), env)
    return 0  # not reached


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve the Dagster UI (webserver and daemon) on the project's instance."""
    env = _dagster_env()
    os.chdir(settings.PROJECT_ROOT)
    os.execve(_dagster()[0], _dagster("dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)), env)
    return 0  # not reached


def cmd_preflight(args: argparse.Namespace) -> int:
    """Check a template against the source and target databases (nothing is written)."""
    from import_pipelines.db.connect import DatabaseConnectionError
    from import_pipelines.templates.loader import TemplateError, load_template, template_path
    from import_pipelines.templates.preflight import preflight

    settings.ensure_environment()
    try:
        path = template_path(args.template)
        template = load_template(path)
        report = preflight(template, source_url=os.environ[args.source_url_env],
                           target_url=os.environ[args.target_url_env], profile=args.profile,
                           template_source=str(path))
    except (TemplateError, DatabaseConnectionError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{path}: {report.entities} entities fit the source and the target")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the embedded PostgreSQL servers under the data folder (demo, tests, benchmarks)."""
    from import_pipelines.db.embedded import stop_embedded_server

    folders = sorted(p.parent for p in settings.data_dir().glob("*/PG_VERSION"))
    stopped = [folder.name for folder in folders if stop_embedded_server(folder)]
    print(f"embedded PostgreSQL stopped: {', '.join(stopped)}" if stopped else "no embedded PostgreSQL was running")
    return 0


def _env_url(variable: str) -> str:
    """The database URL held by environment variable ``variable`` (its value is never printed).

    The project's own source and target variables fall back to the embedded server, as
    everywhere else; any other variable must be set.
    """
    if not os.environ.get(variable) and variable in (settings.SOURCE_URL_ENV, settings.TARGET_URL_ENV):
        settings.ensure_environment()
    url = os.environ.get(variable)
    if not url:
        raise SystemExit(f"environment variable {variable} is not set; it should hold a PostgreSQL URL")
    return url


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show a source's tables, columns, keys, indexes, sample values and suggested joins."""
    import json

    from import_pipelines.authoring.connection import check_connection
    from import_pipelines.authoring.inspect import inspect_source, render_text
    from import_pipelines.db.connect import connection

    url = _env_url(args.source_env)
    report = check_connection(url)
    if report.server_version is None:
        print(report.render_text(), file=sys.stderr)
        return 1
    with connection(url, read_only=True) as conn:
        catalogue = inspect_source(conn, schema=args.schema, unmasked=args.unmasked, joins=not args.no_joins)
    print(json.dumps(catalogue.to_json(), indent=2, default=str) if args.json else render_text(catalogue))
    return 0


def cmd_test_connection(args: argparse.Namespace) -> int:
    """Check that a database can be reached, its version, read-only state and what the role may read."""
    import json

    from import_pipelines.authoring.connection import check_connection

    report = check_connection(_env_url(args.env), timeout=args.timeout)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render_text())
    return 0 if report.ok else 1


def cmd_scaffold(args: argparse.Namespace) -> int:
    """Write a first template for target tables from a source: joins, fields, references, review marks."""
    from pathlib import Path

    from import_pipelines.authoring.inspect import inspect_source
    from import_pipelines.authoring.scaffold import scaffold_template
    from import_pipelines.db.connect import connection
    from import_pipelines.db.introspect import describe_schema

    bases = dict(item.split("=", 1) for item in args.base or [])
    with connection(_env_url(args.source_env), read_only=True) as source, \
            connection(_env_url(args.target_env), read_only=True) as target:
        catalogue = inspect_source(source, schema=args.source_schema)
        try:
            scaffold = scaffold_template(source, catalogue, describe_schema(target, args.target_schema),
                                         tables=args.table, bases=bases, name=args.name,
                                         source_system=args.source_system)
        except ValueError as error:
            print(f"scaffold: {error}", file=sys.stderr)
            return 2
    if args.output:
        Path(args.output).write_text(scaffold.text, encoding="utf-8")
    else:
        print(scaffold.text, end="")
    print(f"{len(scaffold.reviews)} choice(s) marked REVIEW" + (f" in {args.output}" if args.output else ""),
          file=sys.stderr)
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Drop expired audit partitions and rows past each profile's retention (summaries stay)."""
    from import_pipelines.control import ensure_control_schema
    from import_pipelines.control.retention import apply_retention
    from import_pipelines.db.connect import connection

    settings.ensure_environment()
    with connection(_env_url(args.target_env), autocommit=True, purpose="target") as conn:
        ensure_control_schema(conn)
        outcome = apply_retention(conn, dry_run=args.dry_run)
    verb = "would drop" if args.dry_run else "dropped"
    print(f"{verb} {len(outcome.dropped_partitions)} audit partitions: {', '.join(outcome.dropped_partitions) or 'none'};"
          f" rows past a shorter retention: {outcome.deleted_rows or 'none'}; scratch rows pruned:"
          f" {outcome.pruned_scratch}")
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Drop staging tables of runs that are over; prune old pending references and dry-run records."""
    from import_pipelines.control import ensure_control_schema
    from import_pipelines.control.cleanup import cleanup
    from import_pipelines.db.connect import connection

    settings.ensure_environment()
    instance = None
    if not args.no_instance:
        import dagster as dg

        os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT))
        try:
            instance = dg.DagsterInstance.get()
        except Exception as error:  # noqa: BLE001 - said, then judged by age
            print(f"the Dagster instance could not be opened ({type(error).__name__}); staging tables are judged"
                  f" by age alone (older than {args.older_than_hours:g} hours)", file=sys.stderr)
    with connection(_env_url(args.target_env), autocommit=True, purpose="target") as conn:
        ensure_control_schema(conn)
        outcome = cleanup(conn, instance=instance, older_than_hours=args.older_than_hours,
                          scratch_days=args.scratch_days, dry_run=args.dry_run)
    print(outcome.summary(dry_run=args.dry_run))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """Show what a template would import (SQL, first staged rows, counts, rejects) without writing."""
    import json

    from import_pipelines.authoring.preview import preview_template, render_text
    from import_pipelines.templates.loader import TemplateError, load_template

    try:
        template = load_template(args.template)
    except TemplateError as error:
        print(error, file=sys.stderr)
        return 2
    preview = preview_template(template, source_url=_env_url(args.source_env), target_url=_env_url(args.target_env),
                               entities=args.entity or None, profile=args.profile, source_system=args.source_system,
                               rows=args.rows, unmasked=args.unmasked)
    print(json.dumps(preview.to_json(), indent=2, default=str) if args.json else render_text(preview))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Possible duplicates waiting for a person: list them, accept or reject pairs by id."""
    from import_pipelines.control import ensure_control_schema
    from import_pipelines.db.connect import connection
    from import_pipelines.dedupe.review import decide, describe_fields, list_pairs

    with connection(_env_url(args.target_env)) as conn:
        ensure_control_schema(conn)
        if args.action == "list":
            pairs = list_pairs(conn, profile=args.profile, entity=args.entity, run_id=args.run, decided=args.all)
            if not pairs:
                print("no pairs waiting for review" + (" (with these filters)" if args.profile or args.run else ""))
                return 0
            for pair in pairs:
                decision = f"  [{pair.decision}]" if pair.decision else ""
                print(f"{pair.review_id:>7}  {pair.profile}/{pair.entity}  record {pair.source_id} ~ {pair.candidate_kind}"
                      f" {pair.candidate}  {pair.confidence:5.1f}{decision}  {describe_fields(pair.fields)}")
            waiting = sum(pair.decision is None for pair in pairs)
            print(f"{len(pairs):,} pairs, {waiting:,} waiting; decide with `python -m import_pipelines review accept ID...`"
                  " or `review reject ID...`")
            return 0
        decision = "accepted" if args.action == "accept" else "rejected"
        done = decide(conn, args.pairs, decision)
        conn.commit()
    unknown = sorted(set(args.pairs) - set(done))
    if done:
        merge = "merge" if decision == "accepted" else "stay apart"
        print(f"{decision} {len(done)} pair{'s' if len(done) != 1 else ''} ({', '.join(map(str, done))});"
              f" they {merge} on the next run of their import")
    if unknown:
        print(f"no review pair with id {', '.join(map(str, unknown))}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("mirror", "export", "import"):
        from import_pipelines.mirror.cli import main as mirror_main

        return mirror_main(argv)
    if argv and argv[0] == "mapping":
        from import_pipelines.mapping.cli import main as mapping_main

        return mapping_main(argv[1:])
    if argv and argv[0] == "push":
        from import_pipelines.push.cli import main as push_main

        return push_main(argv[1:])
    if argv and argv[0] == "push-server":
        from import_pipelines.push.cli import serve

        return serve(argv[1:])
    from import_pipelines.control.cli import COMMANDS as CONTROL_COMMANDS

    if argv and argv[0] in CONTROL_COMMANDS:
        from import_pipelines.control.cli import main as control_main

        return control_main(argv, env_url=_env_url)
    parser = argparse.ArgumentParser(prog="python -m import_pipelines", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("demo", cmd_demo), ("generate", cmd_generate)):
        p = sub.add_parser(name, help=func.__doc__)
        p.set_defaults(func=func)
        p.add_argument("--customers", type=int, default=None, help="demo size in FreeScout customers")
        p.add_argument("--rows", type=int, default=20_000, help="demo size in imported rows (when --customers is not given)")
        p.add_argument("--seed", type=int, default=7)
        if name == "demo":
            p.add_argument("--regenerate", action="store_true", help="generate the source even if it exists")
            p.add_argument("--no-ui", action="store_true", help="run the import and stop")
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=3000)
    p = sub.add_parser("ui", help=cmd_ui.__doc__)
    p.set_defaults(func=cmd_ui)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    sub.add_parser("migrate", help=cmd_migrate.__doc__).set_defaults(func=cmd_migrate)
    sub.add_parser("webhook-secret", help=cmd_webhook_secret.__doc__).set_defaults(func=cmd_webhook_secret)
    p = sub.add_parser("preflight", help=cmd_preflight.__doc__)
    p.set_defaults(func=cmd_preflight)
    p.add_argument("template", help="a shipped template name (freescout) or a path to a YAML file")
    p.add_argument("--source-url-env", default=settings.SOURCE_URL_ENV, help="variable holding the source URL")
    p.add_argument("--target-url-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    p.add_argument("--profile", default="cli", help="profile name for messages and the load plan")
    sub.add_parser("stop", help=cmd_stop.__doc__).set_defaults(func=cmd_stop)
    p = sub.add_parser("review", help=cmd_review.__doc__)
    p.set_defaults(func=cmd_review)
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the pairs waiting for a decision, the most likely first")
    listing.add_argument("--profile", help="only this profile's pairs")
    listing.add_argument("--entity", help="only this entity's pairs")
    listing.add_argument("--run", help="only the pairs this run listed (a Dagster run id)")
    listing.add_argument("--all", action="store_true", help="decided pairs too")
    for action, meaning in (("accept", "the two records are one: merge them on the next run"),
                            ("reject", "the two records are two: never merge them")):
        decided = actions.add_parser(action, help=meaning)
        decided.add_argument("pairs", type=int, nargs="+", metavar="PAIR", help="review pair id (from `review list`)")
    p = sub.add_parser("inspect", help=cmd_inspect.__doc__)
    p.set_defaults(func=cmd_inspect)
    p.add_argument("--source-env", default=settings.SOURCE_URL_ENV, help="environment variable holding the source URL")
    p.add_argument("--schema", default="public")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--unmasked", action="store_true", help="show sample values that look like secrets or personal data")
    p.add_argument("--no-joins", action="store_true", help="skip the join suggestions (they read samples of the data)")
    p = sub.add_parser("test-connection", help=cmd_test_connection.__doc__)
    p.set_defaults(func=cmd_test_connection)
    p.add_argument("--env", default=settings.SOURCE_URL_ENV, help="environment variable holding the database URL")
    p.add_argument("--timeout", type=int, default=5, help="seconds to wait for the server")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p = sub.add_parser("scaffold", help=cmd_scaffold.__doc__)
    p.set_defaults(func=cmd_scaffold)
    p.add_argument("--table", action="append", required=True, help="a target table to import into (repeatable)")
    p.add_argument("--base", action="append", help="TARGET=SOURCE: the source table of a target table")
    p.add_argument("--source-env", default=settings.SOURCE_URL_ENV, help="environment variable holding the source URL")
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="environment variable holding the target URL")
    p.add_argument("--source-schema", default="public")
    p.add_argument("--target-schema", default="public")
    p.add_argument("--name", default="scaffold", help="the template's name")
    p.add_argument("--source-system", default="source", help="the name the source's records carry in the target")
    p.add_argument("-o", "--output", help="write the YAML here instead of printing it")
    p = sub.add_parser("retention", help=cmd_retention.__doc__)
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    p.set_defaults(func=cmd_retention)
    p = sub.add_parser("cleanup", help=cmd_cleanup.__doc__)
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    p.add_argument("--dry-run", action="store_true", help="say what would be dropped and pruned, change nothing")
    p.add_argument("--older-than-hours", type=float, default=24.0,
                   help="staging of a failed, cancelled or unknown run is kept this long (for a re-execution)")
    p.add_argument("--scratch-days", type=int, default=30, help="pending references and dry-run records kept this long")
    p.add_argument("--no-instance", action="store_true", help="judge staging tables by age, not by Dagster's runs")
    p.set_defaults(func=cmd_cleanup)
    p = sub.add_parser("preview", help=cmd_preview.__doc__)
    p.set_defaults(func=cmd_preview)
    p.add_argument("template", help="a shipped template name or a path to a YAML file")
    p.add_argument("--entity", action="append", help="preview only this entity (repeatable)")
    p.add_argument("--source-env", default=settings.SOURCE_URL_ENV, help="environment variable holding the source URL")
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="environment variable holding the target URL")
    p.add_argument("--profile", default=None,
                   help="the import whose state tells unchanged rows (default: the template's name)")
    p.add_argument("--source-system", default=None, help="overrides the template's source_system")
    p.add_argument("--rows", type=int, default=5, help="staged rows to show per entity")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--unmasked", action="store_true", help="show values that look like secrets or personal data")
    sub.add_parser("mirror", help="copy a whole database (see: mirror --help)")
    sub.add_parser("export", help="export a database to an archive (see: export --help)")
    sub.add_parser("import", help="import an archive (see: import --help)")
    sub.add_parser("mapping", help="suggest and manage field mappings (see: mapping --help)")
    sub.add_parser("push", help="submit a bulk push of records (POST /imports/bulk's body), print its run id"
                                " (see: push --help)")
    sub.add_parser("push-server", help="receive signed bulk pushes over HTTP and launch their runs"
                                       " (see: push-server --help)")
    for name, meaning in CONTROL_COMMANDS.items():
        sub.add_parser(name, help=f"{meaning} (see: {name} --help)")
    args = parser.parse_args(argv)
    return args.func(args)
