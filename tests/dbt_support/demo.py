"""A warehouse after a run, as a user makes one: `python -m loaders.cli demo` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


def dbt_environment(extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment for a plain `dbt` or `elt` from the project root: without the
    variables that would point dbt elsewhere, with `extra` (the warehouse, the state and target folders)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR")}
    return {**env, **extra}


def run_demo(folder: Path, warehouse_env: dict[str, str], days: int = 1) -> dict[str, str]:
    """Sample sources for `days` days, loaded and built on the warehouse of `warehouse_env` (`elt demo`);
    returns the environment that reaches the built warehouse, with dbt's artifacts in `folder/target`."""
    env = dbt_environment(
        {
            **warehouse_env,
            "ELT_STATE_DIR": str(folder / "state"),
            "DBT_TARGET_PATH": str(folder / "target"),
            "DBT_LOG_PATH": str(folder / "logs"),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "loaders.cli", "demo", "--root", str(folder / "sample"), "--days", str(days)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return env


def dbt(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A plain `dbt` from the project root, no flags but `args`."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
