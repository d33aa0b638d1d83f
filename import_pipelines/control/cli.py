"""Commands that act on what runs did: ``export-data``, ``rollback``, ``retry-failed``, ``analytics``.

Called from :func:`import_pipelines.cli.main`, which hands over how a database URL is read from
an environment variable (the project's variables fall back to the embedded server).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from import_pipelines import settings

COMMANDS = {"export-data": "export an entity's target rows or a run's records or errors (CSV, Excel, JSON)",
            "rollback": "undo a run: delete what it created, restore what it changed",
            "retry-failed": "import again only the records that failed in a run (after a fix)",
            "analytics": "what the imports did over the last days, per profile and entity"}

EnvUrl = Callable[[str], str]


def cmd_export_data(args: argparse.Namespace, env_url: EnvUrl) -> int:
    """Export an entity's target rows, or a run's import records or errors, to CSV, Excel or JSON."""
    from import_pipelines.control.export import ExportError, default_name, export
    from import_pipelines.db.connect import connection

    what = "rows" if args.entity and not args.run else ("errors" if args.errors else "records")
    if what == "rows" and not args.profile:
        print("export-data: target rows need --profile and --entity (or give --run RUN_ID)", file=sys.stderr)
        return 2
    path = args.output or default_name(what=what, fmt=args.format, profile=args.profile, entity=args.entity,
                                       run_id=args.run)
    with connection(env_url(args.target_env), read_only=True, purpose="target") as conn:
        try:
            result = export(conn, what=what, fmt=args.format, path=path, profile=args.profile, entity=args.entity,
                            run_id=args.run)
        except ExportError as error:
            print(f"export-data: {error}", file=sys.stderr)
            return 1
    print(f"{result.rows:,} rows, {len(result.columns)} columns -> {result.path}")
    return 0


def template_order(name: str | None) -> list[str] | None:
    """The entities of template ``name`` (shipped name or path) in dependency order; ``None`` without one."""
    if not name:
        return None
    from import_pipelines.templates.graph import dependency_order
    from import_pipelines.templates.loader import load_template

    return dependency_order(load_template(name))


def run_profile(url: str, run_id: str) -> dict:
    """The attributes of the profile that made run ``run_id`` (from the code location), ``{}`` if unknown."""
    from import_pipelines.control.profiles import profile_attributes
    from import_pipelines.db.connect import connection

    with connection(url, read_only=True, purpose="target") as conn:
        row = conn.execute("SELECT profile FROM import_control.runs WHERE run_id = %s", (run_id,)).fetchone()
    return (profile_attributes(row[0]) or {}) if row else {}


def cmd_rollback(args: argparse.Namespace, env_url: EnvUrl) -> int:
    """Undo a run: delete the rows it created, restore the before-images of those it changed."""
    from import_pipelines.control.rollback import RollbackError, RollbackRefused, rollback_run
    from import_pipelines.db.connect import connection
    from import_pipelines.templates.loader import TemplateError

    url = env_url(args.target_env)
    try:
        order = template_order(args.template or run_profile(url, args.run_id).get("template"))
    except TemplateError as error:
        print(error, file=sys.stderr)
        return 2
    with connection(url, autocommit=True, purpose="target") as conn:
        try:
            outcome = rollback_run(conn, args.run_id, dry_run=args.dry_run, force=args.force, order=order)
        except RollbackRefused as refused:
            print(f"rollback: {refused}", file=sys.stderr)
            return 1
        except RollbackError as error:
            print(f"rollback: {error}", file=sys.stderr)
            return 1
    print(outcome.render_text())
    if outcome.rollback_run_id:
        print(f"recorded as run {outcome.rollback_run_id}")
    return 0


def cmd_retry_failed(args: argparse.Namespace, env_url: EnvUrl) -> int:
    """Import again only the records that failed in a run (after the template or the data was fixed), as a new run."""
    from import_pipelines.control.retry import RetryError, retry_failed
    from import_pipelines.templates.loader import TemplateError, load_template

    target = env_url(args.target_env)
    profile = run_profile(target, args.run_id)
    name = args.template or profile.get("template")
    if not name:
        print(f"retry-failed: no profile in the code location made run {args.run_id}; give its --template",
              file=sys.stderr)
        return 2
    try:
        template = load_template(name)
    except TemplateError as error:
        print(error, file=sys.stderr)
        return 2
    source = env_url(args.source_env or profile.get("source_url_env") or settings.SOURCE_URL_ENV)
    try:
        outcome = retry_failed(args.run_id, template=template, source_url=source, target_url=target,
                               source_system=args.source_system or profile.get("source_system"),
                               entities=args.entity or None)
    except RetryError as error:
        print(f"retry-failed: {error}", file=sys.stderr)
        return 1
    print(outcome.render_text())
    return 0


def cmd_analytics(args: argparse.Namespace, env_url: EnvUrl) -> int:
    """What the imports into the target did over the last days, per profile and entity (a table, or JSON)."""
    import json

    from import_pipelines.control import ensure_control_schema
    from import_pipelines.control.analytics import import_history
    from import_pipelines.db.connect import connection

    with connection(env_url(args.target_env), autocommit=True, purpose="target") as conn:
        ensure_control_schema(conn)
        history = import_history(conn, days=args.days)
    if args.json:
        print(json.dumps(history.as_json(), indent=2))
    else:
        print(f"the last {history.days} days (since {history.since:%Y-%m-%d %H:%M} UTC):")
        print(history.render_markdown())
    return 0


def parser() -> argparse.ArgumentParser:
    """The parser of the commands in :data:`COMMANDS`."""
    from import_pipelines.control.export import FORMATS

    root = argparse.ArgumentParser(prog="python -m import_pipelines")
    sub = root.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export-data", help=cmd_export_data.__doc__, description=cmd_export_data.__doc__)
    p.set_defaults(func=cmd_export_data)
    p.add_argument("--profile", help="with --entity: export that entity's target table")
    p.add_argument("--entity", help="the entity (with --run: only its records)")
    p.add_argument("--run", help="a run id: export its import records (or, with --errors, its errors)")
    p.add_argument("--errors", action="store_true", help="with --run: only the failed records and errors found after load")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("-o", "--output", help="the file to write (default: named after what is exported)")
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    p = sub.add_parser("rollback", help=cmd_rollback.__doc__, description=cmd_rollback.__doc__)
    p.set_defaults(func=cmd_rollback)
    p.add_argument("run_id", metavar="RUN_ID", help="the Dagster run id of the import to undo")
    p.add_argument("--dry-run", action="store_true", help="show what would be done (counts and rows), write nothing")
    p.add_argument("--force", action="store_true", help="undo rows later runs changed too (their changes are lost)")
    p.add_argument("--template", help="the profile's template (name or path): undo in its reverse dependency order"
                                      " (default: the run's profile's, else the order of the target's foreign keys)")
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    p = sub.add_parser("retry-failed", help=cmd_retry_failed.__doc__, description=cmd_retry_failed.__doc__)
    p.set_defaults(func=cmd_retry_failed)
    p.add_argument("run_id", metavar="RUN_ID", help="the Dagster run id whose failed records to import again")
    p.add_argument("--template", help="the template as fixed (name or path; default: the run's profile's)")
    p.add_argument("--entity", action="append", help="retry only this entity's failed records (repeatable)")
    p.add_argument("--source-system", help="overrides the template's source_system (default: the profile's)")
    p.add_argument("--source-env", help="variable holding the source URL (default: the profile's)")
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    p = sub.add_parser("analytics", help=cmd_analytics.__doc__, description=cmd_analytics.__doc__)
    p.set_defaults(func=cmd_analytics)
    p.add_argument("--days", type=int, default=30, help="the window, in days back from now (default 30)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--target-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    return root


def main(argv: list[str], *, env_url: EnvUrl) -> int:
    """Run one of :data:`COMMANDS` (``argv[0]``)."""
    args = parser().parse_args(argv)
    return args.func(args, env_url)
