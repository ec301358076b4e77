"""dbt as the harness runs it: a subprocess from the project folder, with the warehouse's settings.

Its outcome is read from its own structured output — dbt's JSON log, one object per line, each node's
result among them — never from a file another dbt could overwrite. Its artifacts go to a target folder of
the harness's own (`<target>/elt`), so a plain `dbt build` beside it writes elsewhere, and each keeps its
partial-parsing state: switching between `elt` and plain `dbt` costs no re-parse.

Interrupted (SIGINT, SIGTERM), the harness asks dbt to stop as dbt stops on Ctrl-C (one SIGINT), waits for
it, then lets the interruption go on. Killed (SIGKILL, the OOM killer), the harness cannot ask: dbt, in a
session of its own, is killed with it by the kernel (Linux's parent-death signal), so no orphaned build
goes on writing, or holds the DuckDB file, after the run that started it is gone.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from loaders.core.events import DbtProgress, interactive, log_event, show_dbt_log
from loaders.core.outcomes import DbtOutcome, Interrupted
from loaders.core.registry import RUN_LOCK_SESSION
from loaders.core.settings import Settings
from loaders.warehouse import dialect

STOP_PATIENCE_SECONDS = 120  # how long dbt may take to cancel its queries once asked to stop
# a node's final statuses in dbt's log, as run_results.json has them
MODEL_STATUSES = {"success", "error", "skipped"}
TEST_STATUSES = {"pass", "fail", "error", "warn", "skipped"}


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """The process environment dbt runs with: the warehouse's settings, the project's profiles.yml."""
    return {**os.environ, **dialect(settings).dbt_env(), "DBT_PROFILES_DIR": str(settings.project_dir)}


def harness_target_path(settings: Settings) -> Path:
    """The harness's own dbt target folder: beside the one a plain dbt uses (DBT_TARGET_PATH or target/)."""
    return settings.project_dir / os.environ.get("DBT_TARGET_PATH", "target") / "elt"


def run_dbt(
    settings: Settings, args: list[str], run_lock_session: str = "", dbt_vars: dict[str, Any] | None = None
) -> DbtOutcome:
    """dbt with these arguments. `run_lock_session`: the warehouse session holding the run's lock, which
    every model then checks is still there before it writes (macros: `serialize_writers()`). `dbt_vars`:
    vars besides the settings' (ELT_LOOKBACK_VERSIONS); arguments with a `--vars` of their own (a user's,
    through `elt build`) are dbt's as given."""
    args = with_vars(args, {**settings.dbt_vars(), **(dbt_vars or {})})
    env = {
        **dbt_environment(settings),
        "DBT_TARGET_PATH": str(harness_target_path(settings)),
        "DBT_LOG_FORMAT": "json",
        "DBT_USE_COLORS": "false",
        RUN_LOCK_SESSION: run_lock_session,
    }
    outcome = DbtOutcome(returncode=-1)
    progress = DbtProgress() if interactive() else None
    if progress is not None:
        progress.__enter__()
    try:
        proc = subprocess.Popen(
            [dbt_executable(), *args],
            cwd=settings.project_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches dbt through the harness, once
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        # announced once dbt runs: a stop from here on is dbt's to finish (stop())
        try:
            log_event("dbt_started", args=args)
            for line in proc.stdout or ():
                read_line(line, outcome, progress)
            outcome.returncode = proc.wait()
        except Interrupted:
            outcome.returncode = stop(proc, outcome, progress)
            log_event("dbt_interrupted", returncode=outcome.returncode)
            raise
    finally:
        if progress is not None:
            progress.__exit__(None, None, None)
    log_event(
        "dbt_finished",
        returncode=outcome.returncode,
        models_built=outcome.models_built,
        models_failed=outcome.models_failed,
        tests_passed=outcome.tests_passed,
        tests_failed=outcome.tests_failed,
    )
    return outcome


def with_vars(args: list[str], dbt_vars: dict[str, Any]) -> list[str]:
    """The arguments with `--vars` (sorted JSON: the same vars, the same text, so dbt's partial parsing,
    which re-parses everything when the vars change, keeps its state between the harness's commands)."""
    if not dbt_vars or "--vars" in args:
        return args
    return [*args, "--vars", json.dumps(dbt_vars, sort_keys=True)]


PR_SET_PDEATHSIG = 1  # prctl(2)
# looked up once, in the harness: the forked child only calls it (no dynamic loading after a fork)
PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent(parent: int) -> None:
    """In the forked child, before dbt starts: SIGKILL it when the harness dies (Linux; elsewhere nothing),
    including when the harness died before this line ran."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)


def stop(proc: subprocess.Popen[str], outcome: DbtOutcome, progress: DbtProgress | None) -> int:
    """Ask dbt to stop as on Ctrl-C, read what it says meanwhile, and wait for it (then kill it)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        for line in proc.stdout or ():
            read_line(line, outcome, progress)
        return proc.wait(timeout=STOP_PATIENCE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def read_line(line: str, outcome: DbtOutcome, progress: DbtProgress | None) -> None:
    """One line of dbt's output: a JSON log record (counted when it is a node's result, carried as an event),
    or a line that is not one (carried as text)."""
    text = line.rstrip("\n")
    if not text:
        return
    try:
        record = json.loads(text)
        info, data = record["info"], record.get("data") or {}
    except (ValueError, KeyError, TypeError):
        if progress is None:
            log_event("dbt_output", line=text)
        elif show_dbt_log():
            progress.say(text)
        return
    outcome.invocation_id = outcome.invocation_id or info.get("invocation_id")
    node = data.get("node_info") or {}
    if info.get("name") == "LogTestResult" and node.get("node_status") in (None, "None"):
        # a unit test's node_info carries no status (dbt 1.11): its result line does
        node = {**node, "node_status": data.get("status")}
    finished = count_result(outcome, node)
    if progress is None:
        log_event("dbt_log", **dbt_fields(info, node))
        return
    if finished and isinstance(data.get("index"), int) and isinstance(data.get("total"), int):
        progress.node_finished(data["index"], data["total"])
    if show_dbt_log() or info.get("level") == "error":
        progress.say(info.get("msg", ""))


def count_result(outcome: DbtOutcome, node: dict[str, Any]) -> bool:
    """Count a node's final status (a model built or failed, a test passed or failed); whether it was one."""
    unique_id, status = node.get("unique_id"), node.get("node_status")
    kind = str(unique_id or "").split(".", 1)[0]
    final = {"model": MODEL_STATUSES, "seed": MODEL_STATUSES, "test": TEST_STATUSES, "unit_test": TEST_STATUSES}
    if status not in final.get(kind, {}) or unique_id in outcome.statuses:
        return False
    outcome.statuses[unique_id] = status
    if kind == "model" and status != "success":
        outcome.models_failed += 1
    elif kind == "model":
        outcome.models_built += 1
    elif kind != "seed" and status == "pass":
        outcome.tests_passed += 1
    elif kind != "seed" and status in ("fail", "error"):
        outcome.tests_failed += 1
    return True


def dbt_fields(info: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """What an event carries of one dbt log record."""
    fields = {"dbt_event": info.get("name"), "level": info.get("level"), "msg": info.get("msg")}
    if node.get("unique_id"):
        fields.update(node=node["unique_id"], node_status=node.get("node_status"))
    return fields
