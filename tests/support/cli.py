"""The `elt` command as a user runs it: a subprocess from the project folder, with the test's environment."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


def elt(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loaders.cli", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def duckdb_file_held(path: Path) -> Iterator[None]:
    """Another process holds the DuckDB file (as a plain `dbt build` or a running `elt run` does)."""
    code = f"import duckdb, time; held = duckdb.connect({str(path)!r}); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(2)  # the holder has the file
        yield
    finally:
        holder.kill()
        holder.wait()
