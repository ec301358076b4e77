"""What every bench module shares: progress on stderr, a scale's label, the targets asked for, a block's
environment.

Invariant: nothing here touches a warehouse, dbt or the simulator, so any bench module may import it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from loaders.core.registry import PROJECT_DIR

BENCH_DIR = PROJECT_DIR / "bench"
TARGET_CHOICES = ("duckdb", "postgres", "both")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def label(orders: int) -> str:
    """1M, 100k, 1500k, 999: how file names and tables name a scale."""
    for suffix, size in (("M", 1_000_000), ("k", 1000)):
        if orders >= size and orders % size == 0:
            return f"{orders // size}{suffix}"
    return str(orders)


def targets(choice: str) -> list[str]:
    """The warehouses of `--target`, one after the other (the machine is shared)."""
    return ["duckdb", "postgres"] if choice == "both" else [choice]


def working_env(folder: Path, dbt_logs: str) -> dict[str, str]:
    """Where the harness keeps one warehouse's dlt state and dbt's artifacts and logs: in `folder`, the
    bench's own (never the project's), with dlt's log quiet."""
    return {
        "ELT_STATE_DIR": str(folder / "state"),
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / dbt_logs),
        "RUNTIME__LOG_LEVEL": "ERROR",
    }


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set for the block, as it was after it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
