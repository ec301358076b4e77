"""`make bench`: the loaders against the raw limit of their paths, and what `elt run` costs, at scale.

    .venv/bin/python -m bench.bench --orders 1000000 --target duckdb|postgres|both

Sources: the project's simulator (`bench/sources.py`) writes a world of `--orders` orders over `--days`
days (one day ~ 1 % of the orders), and one of a tenth of it; each is generated once, in a subprocess,
and served by `elt simulate serve` in a process of its own. Per target, in a fresh warehouse (a DuckDB
file in a temporary folder; on PostgreSQL a fresh database on the server the PG* variables point at, or
else on a throwaway server started from the machine's binaries), each step a subprocess of the `elt`
command as a scheduler runs it (bench/measure.py: wall, CPU of the process tree, peak RSS per process):

1. the raw limits (bench/limits.py) and dlt's built-in source for each path (bench/peers.py), on the
   world the loaders then read;
2. the first `elt run`: per loader the records it extracted and its time and CPU between its
   `load_started` and `load_finished` events -> rows/s, beside the raw limit of its path and dlt's
   built-in (the ratios);
   the whole run's wall, CPU (elt + dbt; PostgreSQL's backends apart, from the postmaster's reaped
   children when the server is local), peak RSS of the elt process (the loaders) and of dbt;
3. `elt run` with no source change;
4. the 1 % change (bench/sources.py), `elt run`, then `elt build --full-refresh` on the same data: the
   ratios of the whole run, of dbt's build, and of the models alone (the sum of the model nodes' times
   in run_results.json);
5. dlt's working folder (ELT_STATE_DIR) after each run;
6. on the world of a tenth: a first `elt run` in another fresh warehouse, for the growth of each
   process's peak RSS between the two scales.

Writes bench/results.json (one object per measurement: name, target, scale, value, unit, reference =
the name of the measurement it is a ratio to, at `scale` unless the name says otherwise) and
bench/results.md, and prints the Markdown table. Progress on stderr; every step's own stderr (elt's
events, dbt's output) in the working folder's logs/, kept with --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, TARGET_CHOICES, environ, label, log, targets, working_env
from bench.limits import Limit, api_limit, app_db_limit, files_limit
from bench.measure import Measured, dbt_nodes, node_seconds, run_measured, server_cpu
from bench.peers import PEER_DOES_NOT, PEER_WHAT, api_peer, app_db_peer, files_peer
from bench.sources import ApiProcess, Change, readable_payments_copy, sources_env, world_end
from bench.warehouse import fresh_warehouse, postgres_server, postmaster
from loaders.core.registry import PROJECT_DIR, SOURCE_NAMES
from loaders.core.settings import Settings

SLOWEST_NODES = 6
SCALES = {"10M": 10_000_000, "1M": 1_000_000, "100k": 100_000}
LIMIT_WHAT = {
    "payments_files": "raw limit: warehouse CSV reader into a table",
    "shop_api": "raw limit: fetch + json.loads every page",
    "app_db": "raw limit: SQLite -> Arrow -> insert",
}


# -- results -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    name: str
    target: str | None
    scale: int
    value: float | None
    unit: str
    reference: str | None = None


class Results:
    def __init__(self) -> None:
        self.items: list[Result] = []
        self.notes: list[str] = []
        """Lines for results.md only: the slowest dbt nodes of each run."""

    def add(
        self, name: str, target: str | None, scale: int, value: float | None, unit: str, reference: str | None = None
    ) -> str:
        rounded = None if value is None else round(float(value), 3 if unit == "ratio" else 1)
        self.items.append(Result(name, target, scale, rounded, unit, reference))
        return name

    def ratio(self, name: str, target: str, scale: int, numerator: float | None, reference: str) -> None:
        denominator = self.value(reference, target, scale)
        value = None if numerator is None or not denominator else numerator / denominator
        self.add(name, target, scale, value, "ratio", reference)

    def value(self, name: str, target: str | None, scale: int) -> float | None:
        for item in self.items:
            if (item.name, item.target, item.scale) == (name, target, scale):
                return item.value
        return None


# -- one target ----------------------------------------------------------------------------------------


@dataclass
class World:
    orders: int
    root: Path
    summary: dict[str, Any]
    readable_payments: Path
    api: ApiProcess
    token: str

    def env(self) -> dict[str, str]:
        return sources_env(self.root, self.api.base_url, self.token)


@dataclass
class Step:
    """One measured `elt` command, with what the warehouse server and the API server spent meanwhile."""

    measured: Measured
    server_cpu_s: float | None
    api_cpu_s: float | None
    models_s: float | None
    slowest: list[tuple[str, float]]

    @property
    def cpu_total_s(self) -> float:
        return self.measured.cpu_s + (self.server_cpu_s or 0.0)

    def span(self, start: str, finish: str, **match: Any) -> tuple[float, float | None] | None:
        """(seconds, CPU seconds of the elt process) between two of its events."""
        begun, ended = self.measured.event(start, **match), self.measured.event(finish, **match)
        if begun is None or ended is None:
            return None
        cpu = None if begun.cpu_s is None or ended.cpu_s is None else ended.cpu_s - begun.cpu_s
        return ended.at - begun.at, cpu


class Target:
    """One warehouse, fresh, for one world."""

    def __init__(self, name: str, world: World, folder: Path, warehouse_env: dict[str, str], timeout: float) -> None:
        self.name, self.world, self.folder, self.timeout = name, world, folder, timeout
        self.env = {
            **os.environ,
            **warehouse_env,
            **world.env(),
            **working_env(folder, "dbt-logs"),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DO_NOT_TRACK": "1",
            "ELT_MAX_DEAD_LETTER_RATE": "1",  # the bench measures; the threshold's exit code would hide nothing
        }
        self.settings = Settings.from_env(self.env)
        self.postmaster = postmaster(self.settings) if name == "postgres" else None
        (folder / "logs").mkdir(parents=True, exist_ok=True)
        self.steps = 0

    def elt(self, *args: str) -> Step:
        self.steps += 1
        command = [str(Path(sys.executable).with_name("elt")), *args]
        log(f"{self.name} {self.world.orders}: elt {' '.join(args)}")
        with server_cpu(self.postmaster) as server:
            api_before = self.world.api.cpu_s()
            measured = run_measured(
                command,
                self.env,
                PROJECT_DIR,
                self.folder / "logs" / f"{self.steps:02d}-{'-'.join(args).strip('-')}.log",
                self.timeout,
            )
        api_after = self.world.api.cpu_s()
        # the harness's own dbt target (loaders/ops/dbt.py); a step that started no dbt has no nodes of its own
        started_dbt = measured.event("dbt_started") is not None
        nodes = dbt_nodes(self.folder / "target" / "elt") if started_dbt else []
        step = Step(
            measured,
            server[0],
            None if api_before is None or api_after is None else round(api_after - api_before, 2),
            node_seconds(nodes, "model") if nodes else (0.0 if not started_dbt else None),
            [(uid, seconds) for uid, _, seconds in nodes[:SLOWEST_NODES]],
        )
        log(
            f"  rc {measured.returncode}{' TIMED OUT' if measured.timed_out else ''}, wall {measured.wall_s}s, "
            f"CPU {measured.cpu_s}s (+server {step.server_cpu_s}), peak RSS {measured.peak_rss_mb} MB; "
            f"{measured.stdout.strip()[:400]}"
        )
        return step

    def state_mb(self) -> float:
        total = sum(p.stat().st_size for p in (self.folder / "state").rglob("*") if p.is_file())
        return total / 2**20


def record_run(results: Results, target: str, scale: int, what: str, step: Step) -> None:
    m = step.measured
    # elt's exit code (ExitCode in loaders/core/outcomes.py); -9 when the bench killed a step past --step-timeout
    results.add(f"{what}: exit code", target, scale, m.returncode, "exit code")
    results.add(f"{what}: wall", target, scale, m.wall_s, "s")
    results.add(f"{what}: CPU elt + dbt", target, scale, m.cpu_s, "s")
    if step.server_cpu_s is not None:
        results.add(f"{what}: CPU PostgreSQL server", target, scale, step.server_cpu_s, "s")
    results.add(f"{what}: CPU total", target, scale, step.cpu_total_s, "s")
    dbt = step.span("dbt_started", "dbt_finished")
    results.add(f"{what}: dbt build wall", target, scale, dbt[0] if dbt else None, "s")
    results.add(f"{what}: models (sum of node times)", target, scale, step.models_s, "s")
    nodes = ", ".join(f"`{uid.split('.')[-1]}` {seconds:.1f}" for uid, seconds in step.slowest)
    results.notes.append(f"- {target}, {label(scale)}, {what}: {nodes or 'no run_results.json'}")


def record_rss(results: Results, target: str, scale: int, step: Step) -> None:
    peaks = step.measured.peak_rss_mb
    results.add("first run: peak RSS elt process (loaders)", target, scale, peaks.get("elt"), "MB")
    results.add("first run: peak RSS dbt", target, scale, peaks.get("dbt"), "MB")


def bench_large(
    target: Target, results: Results, limits: dict[str, Limit], api_server_cpu: float | None, peers: dict[str, Limit]
) -> None:
    name, scale = target.name, target.world.orders
    first = target.elt("run")
    record_run(results, name, scale, "first run", first)
    for source in SOURCE_NAMES:
        limit = limits[source]
        limit_name = results.add(f"{source}: {LIMIT_WHAT[source]}", name, scale, limit.rows_per_s, "rows/s")
        finished = first.measured.event("load_finished", source=source)
        span = first.span("load_started", "load_finished", source=source)
        extracted = None if finished is None else int(finished.fields.get("extracted", 0))
        rate = None if span is None or extracted is None or not span[0] else extracted / span[0]
        results.add(f"{source}: loader (first run)", name, scale, rate, "rows/s")
        results.ratio(f"{source}: loader / raw limit", name, scale, rate, limit_name)
        results.add(f"{source}: records extracted (first run)", name, scale, extracted, "rows")
        results.add(f"{source}: raw limit rows", name, scale, limit.rows, "rows")
        results.add(f"{source}: loader CPU (elt process)", name, scale, span[1] if span else None, "s")
        results.add(f"{source}: raw limit CPU (bench process)", name, scale, limit.cpu_s, "s")
        peer = peers[source]
        peer_name = results.add(f"{source}: {PEER_WHAT[source]}", name, scale, peer.rows_per_s, "rows/s")
        results.add(f"{source}: dlt built-in CPU (bench process)", name, scale, peer.cpu_s, "s")
        results.ratio(f"{source}: loader / dlt built-in", name, scale, rate, peer_name)
    results.add("API server CPU: raw limit", name, scale, api_server_cpu, "s")
    results.add("API server CPU: first run", name, scale, first.api_cpu_s, "s")
    record_rss(results, name, scale, first)
    results.add("dlt working folder after first run", name, scale, target.state_mb(), "MB")

    quiet = target.elt("run")
    record_run(results, name, scale, "no-change run", quiet)
    results.add("dlt working folder after no-change run", name, scale, target.state_mb(), "MB")

    change = Change(target.world.root, world_end(scale, DAYS), target.folder / "app.db.before-change")
    counts = change.apply()
    log(f"{name} {scale}: 1 % change {counts}")
    try:
        changed = target.elt("run")
        full = target.elt("build", "--full-refresh")
    finally:
        change.revert()
    for table, count in counts.items():
        results.add(f"1% change: {table} changed", name, scale, count, "rows")
    record_run(results, name, scale, "1% change run", changed)
    record_run(results, name, scale, "full refresh", full)
    results.ratio(
        "1% change run / full refresh: whole run wall", name, scale, changed.measured.wall_s, "full refresh: wall"
    )
    results.ratio(
        "1% change run / full refresh: whole run CPU", name, scale, changed.cpu_total_s, "full refresh: CPU total"
    )
    dbt = changed.span("dbt_started", "dbt_finished")
    results.ratio(
        "1% change run / full refresh: dbt build wall",
        name,
        scale,
        dbt[0] if dbt else None,
        "full refresh: dbt build wall",
    )
    results.ratio(
        "1% change run / full refresh: models alone",
        name,
        scale,
        changed.models_s,
        "full refresh: models (sum of node times)",
    )
    results.add("dlt working folder after 1% change run", name, scale, target.state_mb(), "MB")


def bench_small(target: Target, results: Results, large_scale: int) -> None:
    name, scale = target.name, target.world.orders
    first = target.elt("run")
    record_run(results, name, scale, "first run", first)
    record_rss(results, name, scale, first)
    for kind, what in (("elt", "elt process (loaders)"), ("dbt", "dbt")):
        small = first.measured.peak_rss_mb.get(kind)
        large = results.value(f"first run: peak RSS {what}", name, large_scale)
        results.add(
            f"peak RSS growth {what}, {label(scale)} -> {label(large_scale)} orders",
            name,
            large_scale,
            None if not small or large is None else large / small,
            "ratio",
            f"first run: peak RSS {what}",  # at the smaller scale, as the name says
        )


# -- the whole bench -----------------------------------------------------------------------------------

DAYS = 100


@contextlib.contextmanager
def one_postgres_server(names: list[str]) -> Iterator[None]:
    """The PG* of one server for the whole bench (the environment's, or a throwaway one), when it has one."""
    if "postgres" not in names:
        yield
        return
    with postgres_server() as server, environ(server):
        yield


def make_world(folder: Path, orders: int, results: Results, stack: contextlib.ExitStack) -> World:
    root = folder / f"world-{label(orders)}"
    log(f"generating {orders} orders over {DAYS} days into {root}")
    measured = run_measured(
        [sys.executable, "-m", "bench.sources", str(root), str(orders), str(DAYS)],
        {**os.environ},
        PROJECT_DIR,
        folder / f"generate-{label(orders)}.log",
    )
    if measured.returncode != 0:
        raise RuntimeError(f"generating the world failed, see {folder / f'generate-{label(orders)}.log'}")
    summary = json.loads(measured.stdout.strip().splitlines()[-1])
    peak = measured.peak_rss_mb.get("bench.sources")
    log(f"  {measured.wall_s}s, peak RSS {peak} MB: {summary}")
    results.add("sources: simulator wall", None, orders, measured.wall_s, "s")
    results.add("sources: simulator peak RSS", None, orders, peak, "MB")
    for key in ("orders", "order_versions", "customers", "payment_rows", "files"):
        results.add(
            f"sources: {key.replace('_', ' ')}", None, orders, summary[key], "rows" if key != "files" else "files"
        )
    readable = folder / f"readable-payments-{label(orders)}"
    readable_payments_copy(root / "payments", readable)
    token = secrets.token_urlsafe(16)
    api = stack.enter_context(ApiProcess(root, token, {**os.environ}))
    return World(orders, root, summary, readable, api, token)


def measure_limits(
    target: str, settings: Settings, world: World
) -> tuple[dict[str, Limit], float | None, dict[str, Limit]]:
    """The raw limit of each path, the API server's CPU while its limit was taken, and dlt's built-in for
    each path (bench/peers.py) on the same world."""
    log(f"{target} {world.orders}: raw limits")
    files = files_limit(settings, world.readable_payments)
    before = world.api.cpu_s()
    api = api_limit(world.api.base_url, world.token)
    after = world.api.cpu_s()
    app = app_db_limit(settings, world.root / "app.db")
    for limit in (files, api, app):
        log(f"  {limit.path}: {limit.rows} rows in {limit.wall_s:.1f}s ({limit.rows_per_s:,.0f} rows/s)")
    server = None if before is None or after is None else after - before
    log(f"{target} {world.orders}: dlt's built-ins")
    peers = {
        "payments_files": files_peer(settings, world.readable_payments, files.rows),
        "shop_api": api_peer(settings, world.api.base_url, world.token, api.rows),
        "app_db": app_db_peer(settings, world.root / "app.db", app.rows),
    }
    for peer in peers.values():
        log(f"  {peer.path}: {peer.rows} rows in {peer.wall_s:.1f}s ({peer.rows_per_s:,.0f} rows/s)")
    return {"payments_files": files, "shop_api": api, "app_db": app}, server, peers


@contextlib.contextmanager
def run_target(target: str, world: World, folder: Path, timeout: float, keep: bool) -> Iterator[Target]:
    """A fresh warehouse for `world`."""
    where = folder / f"{target}-{label(world.orders)}"
    where.mkdir(parents=True, exist_ok=True)
    with fresh_warehouse(target, where, keep) as warehouse_env:
        yield Target(target, world, where, warehouse_env, timeout)


@dataclass(frozen=True)
class Bound:
    """One of the performance targets (issue 19's), checked in results.md beside this run's figures.

    `value` holds at 1 M orders and below; `at_10m` is the tighter bound at 10 M (the 1 % change run);
    `postgres` another bound on PostgreSQL (the no-change run). Between the scales, the 1 M bound applies."""

    prefix: str
    comparison: str
    value: float
    at_10m: float | None = None
    postgres: float | None = None

    def bound(self, target: str, orders: int) -> float:
        if target == "postgres" and self.postgres is not None:
            return self.postgres
        return self.at_10m if orders >= SCALES["10M"] and self.at_10m is not None else self.value

    def met(self, value: float, target: str, orders: int) -> bool:
        bound = self.bound(target, orders)
        return value >= bound if self.comparison == ">=" else value <= bound


TARGETS: tuple[Bound, ...] = (
    *(Bound(f"{source}: loader / raw limit", ">=", 0.5) for source in SOURCE_NAMES),
    *(Bound(f"{source}: loader / dlt built-in", ">=", 1.0) for source in SOURCE_NAMES),
    Bound("1% change run / full refresh: whole run wall", "<=", 0.10, at_10m=0.05),
    Bound("1% change run / full refresh: whole run CPU", "<=", 0.10, at_10m=0.05),
    Bound("no-change run: wall", "<=", 2.0, postgres=3.0),
    Bound("peak RSS growth elt process (loaders)", "<=", 1.5),
    Bound("peak RSS growth dbt", "<=", 1.5),
)


def target_rows(results: list[Result], targets: list[str], orders: int) -> list[str]:
    """The performance targets beside this run's figures, each with the bound that holds at this scale."""
    lines = ["| target | bound | " + " | ".join(targets) + " |", "|---|---|" + "---|" * len(targets)]
    for bound in TARGETS:
        cells = []
        for target in targets:
            found = [r for r in results if r.target == target and r.scale == orders and r.name.startswith(bound.prefix)]
            value = found[0].value if found else None
            if value is None:
                cells.append("n/a")
                continue
            cells.append(f"{value:,.3g} {'met' if bound.met(value, target, orders) else '**not met**'}")
        spelled = " / ".join(f"{value:g}" for value in sorted({bound.bound(target, orders) for target in targets}))
        lines.append(f"| {bound.prefix} | {bound.comparison} {spelled} | {' | '.join(cells)} |")
    return lines


def cell(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.3f}"
    return f"{value:,.0f}" if unit in ("rows", "files", "exit code") else f"{value:,.1f}"


def markdown(results: list[Result], notes: list[str], orders: int, started: str, seconds: float) -> str:
    targets = [t for t in ("duckdb", "postgres") if any(r.target == t for r in results)]
    lines = [
        f"# `make bench`: {label(orders)} orders ({orders:,}), {started}",
        "",
        "Generated by `bench/bench.py` (see its docstring for what each figure is and how it is taken). "
        f"{platform.platform()}, {os.cpu_count()} CPUs; the whole bench took {seconds / 60:.1f} min. "
        "Ratios are of figures taken in the same run; `reference` is what a ratio divides by.",
        "",
    ]
    sources = [r for r in results if r.target is None]
    for scale in sorted({r.scale for r in sources}, reverse=True):
        parts = [
            f"{r.name.removeprefix('sources: ')} {'n/a' if r.value is None else f'{r.value:,.0f}'} {r.unit}"
            for r in sources
            if r.scale == scale
        ]
        lines.append(f"- sources at {label(scale)}: " + ", ".join(parts))
    lines += [
        "",
        *target_rows(results, targets, orders),
        "",
        "Bounds: the no-change run 2 s on DuckDB, 3 s on PostgreSQL; the 1 % change run 0.10 of a full "
        "refresh at 1 M orders, 0.05 at 10 M; RSS growth is from a tenth of this scale to this scale.",
        "",
        PEER_DOES_NOT,
    ]
    lines += ["", "| measurement | scale | unit | " + " | ".join(targets) + " | reference |"]
    lines.append("|---|---|---|" + "---|" * len(targets) + "---|")
    seen: list[tuple[str, int]] = []
    for r in results:
        if r.target is not None and (r.name, r.scale) not in seen:
            seen.append((r.name, r.scale))
    for name, scale in seen:
        row = {r.target: r for r in results if (r.name, r.scale) == (name, scale) and r.target is not None}
        first = next(iter(row.values()))
        cells = []
        for target in targets:
            value = row[target].value if target in row else None
            cells.append(cell(value, first.unit))
        lines.append(f"| {name} | {label(scale)} | {first.unit} | {' | '.join(cells)} | {first.reference or ''} |")
    lines += ["", "Slowest dbt nodes of each run, seconds (run_results.json):", "", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders in the larger world")
    parser.add_argument("--scale", choices=sorted(SCALES), help="instead of --orders: 100k, 1M or 10M")
    parser.add_argument("--target", choices=TARGET_CHOICES, default="both")
    parser.add_argument("--step-timeout", type=float, default=4 * 3600, help="seconds before a step is killed")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (worlds, warehouses, logs)")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR)
    args = parser.parse_args(argv)
    orders = SCALES[args.scale] if args.scale else args.orders
    if orders < 10 * DAYS:
        parser.error(f"--orders must be at least {10 * DAYS}")
    names = targets(args.target)
    started, clock = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="elt-bench-"))
    log(f"working folder {folder}")
    results = Results()
    try:
        with contextlib.ExitStack() as stack, one_postgres_server(names):
            large = make_world(folder, orders, results, stack)
            small = make_world(folder, orders // 10, results, stack)
            for name in names:
                with run_target(name, large, folder, args.step_timeout, args.keep) as target:
                    bench_large(target, results, *measure_limits(name, target.settings, large))
                with run_target(name, small, folder, args.step_timeout, args.keep) as target:
                    bench_small(target, results, orders)
    finally:
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    items = [asdict(item) for item in results.items]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "results.json").write_text(json.dumps(items, indent=1) + "\n")
    text = markdown(results.items, results.notes, orders, started, time.monotonic() - clock)
    (args.results_dir / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
