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


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("mirror", "export", "import"):
        from import_pipelines.mirror.cli import main as mirror_main

        return mirror_main(argv)
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
    p = sub.add_parser("preflight", help=cmd_preflight.__doc__)
    p.set_defaults(func=cmd_preflight)
    p.add_argument("template", help="a shipped template name (freescout) or a path to a YAML file")
    p.add_argument("--source-url-env", default=settings.SOURCE_URL_ENV, help="variable holding the source URL")
    p.add_argument("--target-url-env", default=settings.TARGET_URL_ENV, help="variable holding the target URL")
    p.add_argument("--profile", default="cli", help="profile name for messages and the load plan")
    sub.add_parser("stop", help=cmd_stop.__doc__).set_defaults(func=cmd_stop)
    sub.add_parser("mirror", help="copy a whole database (see: mirror --help)")
    sub.add_parser("export", help="export a database to an archive (see: export --help)")
    sub.add_parser("import", help="import an archive (see: import --help)")
    args = parser.parse_args(argv)
    return args.func(args)
