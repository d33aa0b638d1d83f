"""``python -m import_pipelines push FILE.json``: submit a bulk push and print its run id at once.

With ``--url`` (or ``IMPORT_PIPELINES_DAGSTER_URL``) the run is submitted to a running Dagster
instance through its GraphQL API, which launches it as any run from the UI; without, it runs in
this process on the project's instance (so it is in the UI's run history too), the run id
printed before the first step starts. ``--wait`` waits for a submitted run to end and exits 1
when it did not succeed.

``python -m import_pipelines push-server`` receives signed pushes over HTTP instead
(:mod:`import_pipelines.push.receiver`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

DAGSTER_URL_ENV = "IMPORT_PIPELINES_DAGSTER_URL"
SECRET_ENV = "IMPORT_PIPELINES_PUSH_SECRET"
DEFAULT_PROFILE = "contacts_api"
_ENDED = ("SUCCESS", "FAILURE", "CANCELED")


def main(argv: list[str]) -> int:
    """Parse ``argv`` (after ``push``) and submit or run the push."""
    parser = argparse.ArgumentParser(prog="python -m import_pipelines push", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a JSON file holding the body of POST /imports/bulk")
    parser.add_argument("--profile", default=DEFAULT_PROFILE,
                        help=f"the push profile whose job runs it (default {DEFAULT_PROFILE}: job {DEFAULT_PROFILE}_import)")
    parser.add_argument("--url", default=os.environ.get(DAGSTER_URL_ENV),
                        help=f"a running Dagster webserver, e.g. http://127.0.0.1:3000 (default ${DAGSTER_URL_ENV});"
                             " without it the push runs in this process")
    parser.add_argument("--wait", action="store_true", help="with --url: wait for the run to end")
    args = parser.parse_args(argv)
    from import_pipelines.push.request import push_run_config, read_body

    try:
        body = read_body(args.file)
        config = push_run_config(args.profile, body)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    job = f"{args.profile}_import"
    tags = {"import_pipelines/push": str(body["external_id"])} if body.get("external_id") is not None else {}
    if args.url:
        return _submit(args.url, profile=args.profile, config=config, tags=tags, wait=args.wait)
    return _run_here(job=job, config=config, tags=tags)


def _submit(url: str, *, profile: str, config: dict, tags: dict[str, str], wait: bool) -> int:
    """Launch the profile's job on the instance behind ``url`` through the GraphQL API."""
    from import_pipelines.push.receiver import Launcher, LaunchFailed

    launcher = Launcher(url, profile)
    try:
        run_id = launcher.launch(config, tags)
    except LaunchFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(run_id, flush=True)
    if not wait:
        return 0
    client = launcher.client()
    while (status := client.get_run_status(run_id).value) not in _ENDED:
        time.sleep(0.5)
    print(f"{launcher.job} {run_id}: {status}", file=sys.stderr)
    return 0 if status == "SUCCESS" else 1


def _run_here(*, job: str, config: dict, tags: dict[str, str]) -> int:
    """Run ``job`` in this process on the project's instance, printing the run id first."""
    import dagster as dg

    from import_pipelines import settings

    settings.ensure_environment()
    os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT))
    from import_pipelines.definitions import defs

    definition = defs.resolve_job_def(job)
    run_id = str(uuid.uuid4())
    print(run_id, flush=True)
    with dg.DagsterInstance.get() as instance:
        result = definition.execute_in_process(run_config=config, instance=instance, run_id=run_id, tags=tags,
                                               raise_on_error=False)
    if not result.success:
        print(f"{job} {run_id}: failed (the run's logs say why)", file=sys.stderr)
        return 1
    return 0


def serve(argv: list[str]) -> int:
    """Parse ``argv`` (after ``push-server``) and serve ``POST /imports/bulk`` until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m import_pipelines push-server",
                                     description="receive signed bulk pushes (POST /imports/bulk) and launch their runs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help=f"the push profile (default {DEFAULT_PROFILE})")
    parser.add_argument("--url", default=os.environ.get(DAGSTER_URL_ENV, "http://127.0.0.1:3000"),
                        help=f"the running Dagster webserver that launches the runs (default ${DAGSTER_URL_ENV},"
                             " else http://127.0.0.1:3000)")
    parser.add_argument("--secret-env", default=SECRET_ENV,
                        help=f"variable holding the shared signing secret, whsec_... (default {SECRET_ENV})")
    parser.add_argument("--max-mb", type=int, default=64, help="the largest body taken, in MiB (default 64)")
    args = parser.parse_args(argv)
    import uvicorn

    from import_pipelines.push.receiver import Launcher, receiver_app
    from import_pipelines.webhooks import WebhookError, signer_from_env

    try:
        signer = signer_from_env(args.secret_env, what="push secret")
    except WebhookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = receiver_app(signer=signer, launcher=Launcher(args.url, args.profile), max_bytes=args.max_mb << 20)
    print(f"receiving pushes for {args.profile}_import on http://{args.host}:{args.port}/imports/bulk"
          f" (runs launched through {args.url})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
