"""Run status sensors that send a profile's signed notifications (:mod:`import_pipelines.webhooks`).

A profile with ``notify`` endpoints gets one sensor per run end its endpoints ask for
(``<profile>_notify_succeeded``, ``_failed``, ``_canceled``), watching the profile's job. They run
from the start (a profile that names endpoints wants them told), each tick sending the runs that
ended since the last; the tick's log says what was delivered. The message's counts are read from
the target's control schema; a target that cannot be reached (often why a run failed) leaves
them out rather than the message.
"""

# no ``from __future__ import annotations``: Dagster inspects the sensor function's context annotation

import os
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from import_pipelines.components.profile import ImportProfile

RUN_STATUS = {"succeeded": dg.DagsterRunStatus.SUCCESS, "failed": dg.DagsterRunStatus.FAILURE,
              "canceled": dg.DagsterRunStatus.CANCELED}


def notify_sensors(profile: "ImportProfile", job) -> list[dg.SensorDefinition]:
    """One run status sensor per event the profile's endpoints ask for."""
    events = {event for endpoint in profile.notify for event in endpoint.events}
    return [_notify_sensor(profile, job, event) for event in RUN_STATUS if event in events]


def _notify_sensor(profile: "ImportProfile", job, event: str) -> dg.SensorDefinition:
    @dg.run_status_sensor(run_status=RUN_STATUS[event], name=f"{profile.name}_notify_{event}", monitored_jobs=[job],
                          minimum_interval_seconds=profile.sensor_interval_s,
                          default_status=dg.DefaultSensorStatus.RUNNING,
                          description=f"Send a signed message to the profile's endpoints when a run {event}")
    def notify(context: dg.RunStatusSensorContext) -> dg.SkipReason:
        deliveries = notify_run(profile, event, context.dagster_run, context.instance, log=context.log.info)
        sent = sum(delivery.delivered for delivery in deliveries)
        return dg.SkipReason(f"run {context.dagster_run.run_id} {event}: {sent} of {len(deliveries)} endpoints told")

    return notify


def notify_run(profile: "ImportProfile", event: str, run: dg.DagsterRun, instance: dg.DagsterInstance, *,
               log=print) -> list:
    """Build the run's message and deliver it to the profile's endpoints for ``event``; their deliveries."""
    from import_pipelines.control import ensure_control_schema
    from import_pipelines.db.connect import connect
    from import_pipelines.webhooks import deliver_all, run_streams

    data: dict[str, Any] = {"run_id": run.run_id, "job": run.job_name, "profile": profile.name,
                            "status": run.status.value, **_times(instance, run.run_id),
                            "external_id": _external_id(profile, run), "streams": None, "errors": None,
                            "failures": _failures(instance, run.run_id, profile) if event == "failed" else []}
    url = os.environ.get(profile.target_url_env)
    conn = None
    try:
        if url:
            conn = connect(url, autocommit=True, purpose=f"target of profile {profile.name}")
            ensure_control_schema(conn)
            data["streams"], data["errors"] = run_streams(conn, run.run_id)
    except Exception as failure:  # the message still goes, without counts
        log(f"notify: the run's counts are left out: {failure}")
        conn = None
    try:
        return deliver_all(profile.notify, event, data, run_id=run.run_id, profile=profile.name, conn=conn, log=log)
    finally:
        if conn is not None:
            conn.close()


def _times(instance: dg.DagsterInstance, run_id: str) -> dict[str, str | None]:
    import datetime as dt

    record = instance.get_run_record_by_id(run_id)

    def iso(stamp: float | None) -> str | None:
        return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).isoformat() if stamp else None

    return {"started_at": iso(record.start_time if record else None),
            "ended_at": iso(record.end_time if record else None)}


def _external_id(profile: "ImportProfile", run: dg.DagsterRun) -> str | None:
    """The pushing system's id of a bulk push's batch (from the run's push resource config)."""
    push = ((run.run_config or {}).get("resources") or {}).get(f"{profile.name}_push") or {}
    return (push.get("config") or {}).get("external_id")


def _failures(instance: dg.DagsterInstance, run_id: str, profile: "ImportProfile") -> list[dict[str, str]]:
    """The run's failed steps and their messages, user names and passwords of its databases masked."""
    from import_pipelines.db.connect import parse_url, scrub

    params = [parse_url(os.environ[name]) for name in (profile.source_url_env, profile.target_url_env)
              if os.environ.get(name)]
    failures = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = event.step_failure_data.error if event and event.step_failure_data else None
        while error is not None and error.cause is not None:  # Dagster's wrapper first, the reason innermost
            error = error.cause
        text = error.message.strip() if error else (record.message or "")
        for one in params:
            text = scrub(text, one)
        failures.append({"step": event.step_key if event else "", "message": text})
    return failures
