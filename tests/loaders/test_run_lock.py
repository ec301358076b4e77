"""One run at a time per warehouse: a second `elt run` while one holds the lock exits LOCKED (5) and touches nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loaders.core.outcomes import ExitCode
from loaders.warehouse.locks import run_lock

pytestmark = pytest.mark.warehouses("duckdb", "postgres")


def test_a_second_run_is_refused_while_the_first_holds_the_lock(project) -> None:
    with run_lock(project.settings):
        proc = subprocess.run(
            [sys.executable, "-m", "loaders.cli", "run"], env=dict(os.environ), capture_output=True, text=True
        )
    assert proc.returncode == ExitCode.LOCKED
    assert proc.stdout.startswith("elt run FAILED(locked)")
    assert '"load_started"' not in proc.stderr

    after = subprocess.run([sys.executable, "-m", "loaders.cli", "load"], env=dict(os.environ), capture_output=True)
    assert after.returncode == ExitCode.OK  # released with the holder
