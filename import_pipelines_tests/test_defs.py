"""The whole code location loads, and every job, asset, check and schedule resolves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from import_pipelines.settings import PROJECT_ROOT

ENTITIES = ["accounts", "customer_users", "agents", "tickets", "time_entries"]


def _defs() -> dg.Definitions:
    import import_pipelines.definitions as module

    return module.defs


def test_every_definition_resolves() -> None:
    defs = _defs()
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {f"freescout_demo/{e}" for e in ENTITIES} | {"freescout_demo/late_seed"} <= keys
    for job_name in ("freescout_demo_import", "mirror_database", "export_archive", "import_archive"):
        assert defs.resolve_job_def(job_name).name == job_name
    schedule = defs.resolve_schedule_def("freescout_demo_schedule")
    assert schedule.cron_schedule == "0 * * * *" and schedule.job_name == "freescout_demo_import"
    check_keys = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    for entity in ENTITIES:
        for check in ("natural_key_unique", "reconciliation", "references_resolved"):
            assert (f"freescout_demo/{entity}", check) in check_keys


def test_entity_assets_follow_references_and_steps_are_ops() -> None:
    defs = _defs()
    upstream = defs.resolve_asset_graph().asset_dep_graph["upstream"]
    key = lambda name: dg.AssetKey(["freescout_demo", name])  # noqa: E731
    # every entity waits for the whole template's preflight
    assert upstream[key("tickets")] == {key("customer_users"), key("agents"), key("preflight")}
    assert upstream[key("time_entries")] == {key("tickets"), key("agents"), key("preflight")}
    assert upstream[key("customer_users")] == {key("accounts"), key("preflight")}
    assert upstream[key("accounts")] == {key("preflight")}
    assert upstream[key("late_seed")] == {key(e) for e in ENTITIES}
    job = defs.resolve_job_def("freescout_demo_import")
    ops = {node.name for node in job.graph.node_dict["freescout_demo__tickets"].definition.node_defs}
    assert ops == {f"freescout_demo__tickets__{step}" for step in ("extract", "map", "dedupe", "load")}


def test_the_longest_chain_of_loads_is_scheduled_first() -> None:
    job = _defs().resolve_job_def("freescout_demo_import")
    priority = {}
    for entity in ENTITIES:
        for op in job.graph.node_dict[f"freescout_demo__{entity}"].definition.node_defs:
            priority[op.name.removeprefix("freescout_demo__")] = int(op.tags["dagster/priority"])
    # accounts -> customer_users -> tickets -> time_entries is the longest chain of loads
    assert priority["accounts__load"] > priority["customer_users__extract"]
    assert priority["customer_users__extract"] > priority["tickets__load"] > priority["time_entries__extract"]
    assert priority["customer_users__dedupe"] > priority["customer_users__extract"]
    assert priority["agents__extract"] == priority["customer_users__extract"]  # both gate the tickets' load
    checks = [node for node in job.graph.node_dict.values() if node.name.endswith("_natural_key_unique")]
    assert checks and min(priority.values()) > max(int(node.definition.tags.get("dagster/priority", 0))
                                                   for node in checks)


def test_dagster_cli_validates_the_workspace_with_no_storage_url(pg_server: str, new_database) -> None:
    # as a user (or a hook) would run it in the project root: no DAGSTER_HOME, no Dagster storage
    # URL; dagster.yaml's storage class resolves one (here on the test server)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPORT_PIPELINES_", "DAGSTER_HOME"))}
    env.update({"IMPORT_PIPELINES_PG_URL": pg_server, "IMPORT_PIPELINES_SOURCE_URL": new_database("source"),
                "IMPORT_PIPELINES_TARGET_URL": new_database("target")})
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful" in result.stdout + result.stderr
