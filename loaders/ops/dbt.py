"""dbt as the harness runs it: a subprocess from the project folder, with the warehouse's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loaders.core.events import DbtProgress, interactive, log_event
from loaders.core.outcomes import DbtOutcome
from loaders.core.settings import Settings
from loaders.warehouse import dialect


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """The process environment dbt runs with: the warehouse's settings, the project's profiles.yml."""
    return {**os.environ, **dialect(settings).dbt_env(), "DBT_PROFILES_DIR": str(settings.project_dir)}


def run_dbt(settings: Settings, args: list[str]) -> DbtOutcome:
    env = dbt_environment(settings)
    # dbt's own DBT_TARGET_PATH lets two invocations (two test sessions, a plain dbt beside the
    # harness) keep their artifacts apart; relative paths are the project folder's, as for dbt.
    results_path = settings.project_dir / env.get("DBT_TARGET_PATH", "target") / "run_results.json"
    results_path.unlink(missing_ok=True)  # a dbt that fails before writing must not report the last run's
    log_event("dbt_started", args=args)
    command = [dbt_executable(), *args]
    if interactive():
        with (
            DbtProgress() as progress,
            subprocess.Popen(
                command, cwd=settings.project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ) as proc,
        ):
            for line in proc.stdout or ():
                progress.line(line)
    else:
        proc = subprocess.run(command, cwd=settings.project_dir, env=env, stdout=sys.stderr, check=False)
    outcome = DbtOutcome(returncode=proc.returncode)
    if results_path.exists():
        results = json.loads(results_path.read_text())
        outcome.invocation_id = results.get("metadata", {}).get("invocation_id")
        for result in results.get("results", []):
            kind = result["unique_id"].split(".", 1)[0]
            status = result["status"]
            outcome.statuses[result["unique_id"]] = status
            if kind == "model":
                if status == "success":
                    outcome.models_built += 1
                elif status in ("error", "skipped"):
                    outcome.models_failed += 1
            elif kind in ("test", "unit_test"):
                if status == "pass":
                    outcome.tests_passed += 1
                elif status in ("fail", "error"):
                    outcome.tests_failed += 1
    log_event(
        "dbt_finished",
        returncode=proc.returncode,
        models_built=outcome.models_built,
        models_failed=outcome.models_failed,
        tests_passed=outcome.tests_passed,
        tests_failed=outcome.tests_failed,
    )
    return outcome
