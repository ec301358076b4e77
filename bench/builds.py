"""Timed dbt invocations in this process, as the incremental bench takes them: wall, CPU of the dbt process
tree (getrusage of the reaped children), a local PostgreSQL server's CPU (its postmaster's reaped
backends), node times from run_results.json and, where the server logs them, the slowest statements.

Invariant: every timed build starts from the warehouse's steady state (`steady_state`), so two builds
differ by what they do, not by what the one before left to vacuum or checkpoint.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import environ, log
from bench.measure import dbt_nodes, node_seconds, rusage_cpu, server_cpu
from bench.warehouse import slow_statements, steady_state
from loaders.core.settings import Settings


@dataclass
class Context:
    """One target's warehouse, as the dbt invocations of the bench reach it."""

    settings: Settings
    folder: Path
    dbt_extra: list[str]
    postmaster: int | None = None
    server_log: Path | None = None


@dataclass
class Build:
    label: str
    args: list[str]
    wall_s: float
    cpu_dbt_s: float
    cpu_server_s: float | None
    returncode: int
    models_built: int
    models_failed: int
    tests_passed: int
    tests_failed: int
    model_s: float = 0.0
    test_s: float = 0.0
    top_nodes: list[tuple[str, str, float]] = field(default_factory=list)
    # PostgreSQL: the slowest statements (node, what, s) from the server log, lock waits apart
    statements: list[tuple[str, str, float]] = field(default_factory=list)
    lock_wait_s: float | None = None
    load_average: float = 0.0  # the machine's 1-min load average at the end (it is shared; wall times vary)

    @property
    def cpu_s(self) -> float:
        return self.cpu_dbt_s + (self.cpu_server_s or 0.0)


def target_path() -> Path:
    return Path(os.environ["DBT_TARGET_PATH"])


def dbt(settings: Settings, args: list[str], extra: list[str]) -> Any:
    from loaders.ops.dbt import run_dbt

    return run_dbt(settings, [*args, *extra])


def timed_build(ctx: Context, label: str, args: list[str], env: dict[str, str] | None = None) -> Build:
    steady_state(ctx.settings)
    if ctx.postmaster is not None:
        time.sleep(1.0)  # the steady-state session's backend is reaped before the baseline
    log_offset = ctx.server_log.stat().st_size if ctx.server_log is not None else 0
    log(f"{label}: dbt {' '.join(args)}")
    with server_cpu(ctx.postmaster) as server:
        cpu_before = rusage_cpu(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        with environ(env or {}):
            outcome = dbt(ctx.settings, args, ctx.dbt_extra)
        wall = time.monotonic() - started
        cpu = rusage_cpu(resource.RUSAGE_CHILDREN) - cpu_before
    build = Build(
        label,
        args,
        round(wall, 2),
        round(cpu, 2),
        server[0],
        outcome.returncode,
        outcome.models_built,
        outcome.models_failed,
        outcome.tests_passed,
        outcome.tests_failed,
    )
    build.load_average = round(os.getloadavg()[0], 1)
    if ctx.server_log is not None:
        statements = slow_statements(ctx.server_log, log_offset)
        build.lock_wait_s = round(sum(s for _, what, s in statements if what == "writer lock wait"), 2)
        build.statements = [entry for entry in statements if entry[1] != "writer lock wait"][:15]
    nodes = dbt_nodes(target_path())
    if nodes:
        build.model_s = node_seconds(nodes, "model")
        build.test_s = node_seconds(nodes, "test", "unit_test")
        build.top_nodes = [(uid, status, round(s, 2)) for uid, status, s in nodes[:12]]
        failed = [(uid, status) for uid, status, _ in nodes if status in ("error", "fail", "skipped")]
        if failed:
            log(f"{label}: not ok: {failed}")
    log(
        f"{label}: wall {build.wall_s}s, CPU dbt {build.cpu_dbt_s}s server {build.cpu_server_s}s,"
        f" rc {outcome.returncode}"
    )
    return build


def compiled_sql(ctx: Context, model: str) -> str:
    """The model's SELECT as `dbt compile` renders it for the next run (its incremental branch, once built)."""
    outcome = dbt(ctx.settings, ["compile", "--select", model], ctx.dbt_extra)
    if outcome.returncode != 0:
        raise RuntimeError(f"dbt compile --select {model} failed")
    found = list((target_path() / "compiled").rglob(f"{model}.sql"))
    if len(found) != 1:
        raise RuntimeError(f"compiled SQL of {model}: found {found}")
    return found[0].read_text().strip().rstrip(";")
