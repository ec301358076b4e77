"""The `elt` run: every loader, then `dbt build`, then the books and a one-line summary.

A loader that fails does not stop the others or dbt (what landed is still worth building); it makes the
run's exit code non-zero. Progress goes to stderr as one JSON object per line; the summary is the one
line on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from pathlib import Path
from typing import Any

from loaders.settings import Settings

QUARANTINE_TABLES = ("customers", "products", "orders", "payments")


class ExitCode(IntEnum):
    OK = 0
    LOAD_FAILED = 1
    BUILD_FAILED = 2
    TESTS_FAILED = 3
    LOCKED = 4


def log_event(event: str, **fields: Any) -> None:
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
    print(json.dumps(record, default=str), file=sys.stderr, flush=True)


@dataclass
class SourceOutcome:
    source: str
    extracted: int = 0
    landed: int = 0
    dead_lettered: int = 0
    error: str | None = None
    resumed_packages: int = 0

    def describe(self) -> str:
        if self.error:
            return f"{self.source} FAILED ({self.error})"
        resumed = f" resumed={self.resumed_packages}" if self.resumed_packages else ""
        return (
            f"{self.source} extracted={self.extracted} landed={self.landed} dead_lettered={self.dead_lettered}{resumed}"
        )


@dataclass
class DbtOutcome:
    returncode: int
    models_built: int = 0
    models_failed: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    statuses: dict[str, str] = field(default_factory=dict)


def load_sources(settings: Settings, sources: list[str]) -> list[SourceOutcome]:
    from loaders.indexes import ensure_raw_indexes
    from loaders.locking import writer_lock
    from loaders.pipelines import load_source

    outcomes = []
    for source in sources:
        started = time.monotonic()
        log_event("load_started", source=source)
        try:
            with writer_lock(settings):
                report = load_source(settings, source, on_reset=partial(log_event, "local_state_reset", source=source))
                ensure_raw_indexes(settings, source)
        except Exception as exc:  # one source's failure must not hide the others'
            message = root_cause(exc)
            log_event("load_failed", source=source, error=message)
            outcomes.append(SourceOutcome(source, error=message))
            continue
        outcome = SourceOutcome(
            source, report.extracted, report.landed, report.dead_lettered, resumed_packages=report.resumed_packages
        )
        log_event(
            "load_finished",
            source=source,
            extracted=outcome.extracted,
            landed=outcome.landed,
            dead_lettered=outcome.dead_lettered,
            load_ids=list(report.load_ids),
            resumed_packages=report.resumed_packages,
            resumed_load_ids=list(report.resumed_load_ids),
            seconds=round(time.monotonic() - started, 2),
        )
        outcomes.append(outcome)
    return outcomes


def root_cause(exc: BaseException) -> str:
    from loaders.pipelines import innermost_cause

    cause = innermost_cause(exc)
    return f"{type(cause).__name__}: {cause}".splitlines()[0]


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def run_dbt(settings: Settings, args: list[str]) -> DbtOutcome:
    env = {**os.environ, **settings.dbt_env(), "DBT_PROFILES_DIR": str(settings.project_dir)}
    # dbt's own DBT_TARGET_PATH lets two invocations (two test sessions, a plain dbt beside the
    # harness) keep their artifacts apart; relative paths are the project folder's, as for dbt.
    results_path = settings.project_dir / env.get("DBT_TARGET_PATH", "target") / "run_results.json"
    results_path.unlink(missing_ok=True)  # a dbt that fails before writing must not report the last run's
    log_event("dbt_started", args=args)
    proc = subprocess.run([dbt_executable(), *args], cwd=settings.project_dir, env=env, stdout=sys.stderr, check=False)
    outcome = DbtOutcome(returncode=proc.returncode)
    if results_path.exists():
        for result in json.loads(results_path.read_text()).get("results", []):
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


def open_quarantine(settings: Settings) -> dict[str, int | None]:
    from loaders.warehouse import connect

    counts: dict[str, int | None] = {}
    with connect(settings) as conn:
        cursor = conn.cursor()
        for table in QUARANTINE_TABLES:
            try:
                cursor.execute(f"select count(*) from quarantine.{table} where not is_resolved")
                counts[table] = int(cursor.fetchone()[0])
            except Exception:  # not built yet (a failed first build): reported as unknown
                counts[table] = None
                if settings.target == "postgres":
                    conn.rollback()
    return counts


def summary_line(
    outcomes: list[SourceOutcome],
    dbt: DbtOutcome | None,
    quarantine: dict[str, int | None],
    seconds: float,
    code: ExitCode,
) -> str:
    parts = [f"elt run {'ok' if code == ExitCode.OK else 'FAILED(' + code.name.lower() + ')'}:"]
    parts.append("; ".join(outcome.describe() for outcome in outcomes) + ";")
    if dbt is not None:
        parts.append(f"models built={dbt.models_built} failed={dbt.models_failed};")
        parts.append(f"tests passed={dbt.tests_passed} failed={dbt.tests_failed};")
    open_rows = " ".join(f"{table}={'?' if n is None else n}" for table, n in quarantine.items())
    parts.append(f"quarantine open {open_rows};")
    parts.append(f"{seconds:.1f}s")
    return " ".join(parts)


def elt_run(settings: Settings, sources: list[str], dbt_args: list[str]) -> tuple[ExitCode, str]:
    from loaders.locking import RunLocked, run_lock

    started = time.monotonic()
    try:
        with run_lock(settings):
            outcomes = load_sources(settings, sources)
            dbt = run_dbt(settings, ["build", *dbt_args])
            quarantine = open_quarantine(settings)
    except RunLocked as exc:
        log_event("run_locked", error=str(exc))
        return ExitCode.LOCKED, f"elt run FAILED(locked): {exc}"
    if any(outcome.error for outcome in outcomes):
        code = ExitCode.LOAD_FAILED
    elif dbt.models_failed or (dbt.returncode != 0 and not dbt.tests_failed):
        code = ExitCode.BUILD_FAILED
    elif dbt.tests_failed:
        code = ExitCode.TESTS_FAILED
    else:
        code = ExitCode.OK
    line = summary_line(outcomes, dbt, quarantine, time.monotonic() - started, code)
    log_event("run_finished", exit_code=int(code))
    return code, line
