"""The triggers of a records profile: a watched folder, and a Google Sheet's modification time.

**Folder** (``watch_folder``, a file profile): each tick lists the folder's files that match the
profile's patterns and starts one run of the profile's job per new file, the file's path in the
run config (``<profile>_settings.source_path``) and its content hash (sha256) as the run key, so
a file is never imported twice, under any name, by this sensor. A file still being written waits:
one modified within the last ``settle_s`` seconds must show the same size and modification time
on two ticks in a row (the cursor keeps what the last tick saw). A file already submitted is not
hashed again while its size and modification time stay as they were; a file that changes in place
is a new file (new content, new hash). Lock and partial files of editors and downloads are
ignored.

**Sheet** (``watch_sheet``, a sheet profile): each tick asks the Drive API for the spreadsheet's
``modifiedTime``; a time the cursor has not seen starts a run, keyed by the spreadsheet and that time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from import_pipelines.components.profile import ImportProfile

SETTLE_S = 10.0
# what editors, spreadsheets and browsers leave while they write: never a file to import
_PARTIAL = ("~$*", ".~lock.*", ".*", "*.part", "*.partial", "*.tmp", "*.crdownload", "*.download")
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class FileState:
    """What a tick saw of one file: size, modification time (ns) and, once submitted, its content hash."""

    size: int
    mtime_ns: int
    sha256: str | None = None

    def to_json(self) -> list:
        return [self.size, self.mtime_ns, self.sha256]


def file_sha256(path: Path) -> str:
    """The file's content hash, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def scan_folder(folder: Path, *, patterns: list[str], cursor: str | None, settle_s: float = SETTLE_S,
                now: float | None = None) -> tuple[list[tuple[Path, str]], str]:
    """The files of ``folder`` ready to import now, each with its sha256, and the next cursor.

    A file is ready when it is new (or changed) and either has not been modified for ``settle_s``
    seconds or looks the same as on the previous tick.
    """
    now = time.time() if now is None else now
    seen = {name: FileState(*state) for name, state in json.loads(cursor or "{}").items()}
    states: dict[str, FileState] = {}
    ready: list[tuple[Path, str]] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name
        if not entry.is_file() or not any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns) or any(
                fnmatch.fnmatch(name, p) for p in _PARTIAL):
            continue
        stat = entry.stat()
        state, before = FileState(stat.st_size, stat.st_mtime_ns), seen.get(name)
        unchanged = before is not None and (before.size, before.mtime_ns) == (state.size, state.mtime_ns)
        if unchanged and before.sha256 is not None:
            states[name] = before  # submitted already, not touched since
            continue
        if not unchanged and now - stat.st_mtime < settle_s:
            states[name] = state  # modified a moment ago, or still growing: look again next tick
            continue
        digest = file_sha256(Path(entry.path))
        after = os.stat(entry.path)
        if (after.st_size, after.st_mtime_ns) != (state.size, state.mtime_ns):
            states[name] = FileState(after.st_size, after.st_mtime_ns)  # written to while being hashed
            continue
        states[name] = FileState(state.size, state.mtime_ns, digest)
        ready.append((Path(entry.path), digest))
    return ready, json.dumps({name: s.to_json() for name, s in states.items()}, separators=(",", ":"))


def watch_sensors(profile: ImportProfile, job: dg.UnresolvedAssetJobDefinition) -> list[dg.SensorDefinition]:
    """The profile's folder and sheet sensors (stopped until switched on, like its schedule)."""
    sensors = []
    if profile.watch_folder:
        sensors.append(_folder_sensor(profile, job))
    if profile.watch_sheet:
        sensors.append(_sheet_sensor(profile, job))
    return sensors


def watched_folder(profile: ImportProfile) -> Path:
    """The profile's watched folder; a relative path is relative to the project's data folder."""
    from import_pipelines.settings import data_dir

    folder = Path(profile.watch_folder).expanduser()
    return folder if folder.is_absolute() else data_dir() / folder


def _folder_sensor(profile: ImportProfile, job) -> dg.SensorDefinition:
    @dg.sensor(name=f"{profile.name}_folder", job=job, minimum_interval_seconds=profile.sensor_interval_s,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Start {profile.name}'s import for each new file in its watched folder"
                           f" ({profile.watch_folder}; patterns {', '.join(profile.watch_patterns)}); the file's"
                           " sha256 is the run key, a file still being written waits for the next tick.")
    def folder_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        folder = watched_folder(profile)
        if not folder.is_dir():
            return dg.SensorResult(skip_reason=f"{folder} is not a folder (yet)", cursor=context.cursor)
        ready, cursor = scan_folder(folder, patterns=profile.watch_patterns, cursor=context.cursor,
                                    settle_s=profile.settle_s)
        requests = [dg.RunRequest(run_key=digest, run_config={"resources": {f"{profile.name}_settings": {
            "config": {"source_path": str(path)}}}}, tags={"import_pipelines/file": path.name,
                                                          "import_pipelines/sha256": digest})
            for path, digest in ready if not _already_run(context, digest)]
        if not requests:
            return dg.SensorResult(skip_reason=f"no new file in {folder}", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return folder_sensor


def _already_run(context: dg.SensorEvaluationContext, run_key: str) -> bool:
    """Whether this sensor already started a run with ``run_key`` (the same content under another name).

    The daemon skips such a request too; asking here keeps the tick's result honest.
    """
    from dagster._core.storage.dagster_run import RunsFilter
    from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # evaluated without an instance (a unit test)
        return False
    return bool(instance.get_run_ids(RunsFilter(tags={SENSOR_NAME_TAG: context.sensor_name, RUN_KEY_TAG: run_key}),
                                     limit=1))


def _sheet_sensor(profile: ImportProfile, job) -> dg.SensorDefinition:
    source: dict[str, Any] = dict(profile.source or {})

    @dg.sensor(name=f"{profile.name}_sheet", job=job, minimum_interval_seconds=profile.sensor_interval_s,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Start {profile.name}'s import when its Google Sheet's modification time changes"
                           " (the Drive API's modifiedTime).")
    def sheet_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        from import_pipelines.sources.sheets import DEFAULT_CREDENTIALS_ENV, sheet_modified_time, spreadsheet_key

        modified = sheet_modified_time(source["spreadsheet"],
                                       credentials_env=source.get("credentials_env") or DEFAULT_CREDENTIALS_ENV)
        if modified == context.cursor:
            return dg.SensorResult(skip_reason=f"the sheet has not changed since {modified}", cursor=modified)
        key = spreadsheet_key(source["spreadsheet"])
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"{key}@{modified}", tags={
            "import_pipelines/sheet_modified": modified})], cursor=modified)

    return sheet_sensor
