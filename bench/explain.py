"""`make bench-explain`: what an incremental run costs after a 1 % change, beside a full refresh, at scale,
and where its incremental SELECTs read (EXPLAIN ANALYZE, every scan's rows against its table's size).

    .venv/bin/python -m bench.explain --orders 1000000 --target duckdb|postgres|both

The steps, the figures and the files written: bench/README.md. Invariant: every target starts from a
fresh warehouse holding the same synthetic history (bench/history.py), and every timed build from its
steady state; the targets run one after the other (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.builds import Context, compiled_sql, dbt, target_path, timed_build
from bench.common import BENCH_DIR, TARGET_CHOICES, environ, log, targets, working_env
from bench.history import SOURCES, Scale, land_change, land_history, raw_counts, real_load_ids, tiny_real_load
from bench.report import json_path, markdown, write_plans
from bench.warehouse import (
    after_loads,
    cursor,
    enable_statement_log,
    fresh_warehouse,
    postmaster,
    rows,
    scalar,
    steady_state,
)
from loaders.core.settings import Settings
from loaders.warehouse import dialect

RESULTS_DIR = BENCH_DIR / "results"
# The models whose incremental SELECT is explained, each after the models it judges against ran.
EXPLAINED = {
    "int_orders__versions": ("int_customers__versions", "int_products__versions"),
    "int_payments__versions": ("int_orders__versions",),
    "order_items": (),  # int_orders__versions ran on the change for the step before
}
# Left out of the timed builds by default, and timed alone (with a statement timeout on PostgreSQL): on
# PostgreSQL at 1 M orders its `NOT IN (subquery)` under an OR runs as a plain, un-hashed SubPlan (the
# subquery's rows exceed work_mem), quadratic in the history; the build does not finish in hours.
SLOW_TESTS = ("latest_version_is_canonical_or_open_in_quarantine",)


# -- plans ---------------------------------------------------------------------------------------------


@dataclass
class Scan:
    relation: str
    node: str
    rows_read: int
    rows_out: int
    loops: int
    detail: str
    table_rows: int = 0

    @property
    def share(self) -> float:
        return self.rows_read / self.table_rows if self.table_rows else 0.0


def explain_duckdb(settings: Settings, sql: str, folder: Path) -> tuple[str, list[Scan], float, int]:
    """EXPLAIN ANALYZE by DuckDB's profiler (JSON), rendered as an indented tree: the box-drawn form of
    the same profile is thousands of characters wide."""
    profile = folder / f"profile-{uuid.uuid4().hex[:8]}.json"
    with cursor(settings, read_only=True) as cur:
        cur.execute("set enable_profiling = 'json'")
        cur.execute(f"set profiling_output = '{profile}'")
        cur.execute(sql)
        result_rows = len(cur.fetchall())
    tree = json.loads(profile.read_text())
    scans: list[Scan] = []
    lines: list[str] = []

    def clip(value: Any) -> str:
        text = " ".join(str(value).split())
        return text if len(text) <= 240 else f"{text[:240]}... ({len(text)} chars)"

    def walk(node: dict[str, Any], depth: int) -> None:
        kind = node.get("type") or node.get("operator_type") or "?"
        info = node.get("extra_info") or {}
        out = int(node.get("intermediate_rows", node.get("operator_cardinality", 0)) or 0)
        metrics = f"rows {out:,}"
        if "rows_scanned" in node:
            metrics += f", scanned {int(node['rows_scanned']):,}"
            metrics += f", row groups {node.get('row_groups_scanned')}/{node.get('total_row_groups_to_scan')}"
        metrics += f", {1000 * float(node.get('timing', node.get('operator_timing', 0)) or 0):.1f} ms"
        pad = "  " * depth
        lines.append(f"{pad}{kind} [{metrics}]")
        for key, value in info.items():
            if key != "Estimated Cardinality":
                lines.append(f"{pad}    {key}: {clip(value)}")
        if kind in ("TABLE_SCAN", "SEQ_SCAN"):
            table = str(info.get("Table", "?")).split(".", 1)[-1]  # drop the catalog
            detail = "; ".join(
                f"{key}: {clip(info[key])}" for key in ("Type", "Filters", "Dynamic Filters") if info.get(key)
            )
            if node.get("row_groups_scanned") is not None:
                detail += f"; row groups {node.get('row_groups_scanned')}/{node.get('total_row_groups_to_scan')}"
            scans.append(Scan(table, "TABLE_SCAN", int(node.get("rows_scanned", out) or 0), out, 1, detail))
        for child in node.get("children", []):
            walk(child, depth + 1)

    for root in tree.get("operator") or tree.get("children") or []:
        walk(root, 0)
    query = tree.get("query") or {}
    total = float(query.get("total_time") or tree.get("latency") or 0.0)
    header = (
        f"total {total:.3f} s, cpu {float(query.get('cpu_time') or 0):.3f} s, "
        f"rows scanned {int(query.get('total_rows_scanned') or 0):,}, "
        f"row groups {query.get('total_row_groups_scanned')}/{query.get('total_row_groups_to_scan')}"
    )
    return header + "\n" + "\n".join(lines), scans, total, result_rows


def explain_postgres(settings: Settings, sql: str, folder: Path) -> tuple[str, list[Scan], float, int]:
    """EXPLAIN (ANALYZE, BUFFERS): the text plan, and the JSON one for the scans' rows."""
    with cursor(settings, read_only=True) as cur:
        cur.execute(f"explain (analyze, buffers) {sql}")
        text = "\n".join(str(row[0]) for row in cur.fetchall())
        cur.execute(f"explain (analyze, buffers, verbose, format json) {sql}")
        plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    plan = plan[0]
    scans: list[Scan] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node.get("Node Type", "")
        if "Scan" in kind and node.get("Relation Name"):
            loops = int(node.get("Actual Loops", 1))
            out = int(node.get("Actual Rows", 0)) * loops
            removed = (
                int(node.get("Rows Removed by Filter", 0)) + int(node.get("Rows Removed by Index Recheck", 0))
            ) * loops
            parts = []
            if node.get("Index Name"):
                parts.append(f"index {node['Index Name']}")
            for child in node.get("Plans", []):
                if child.get("Node Type") == "Bitmap Index Scan":
                    parts.append(f"bitmap index {child.get('Index Name')} ({child.get('Index Cond', '')})")
            for key in ("Index Cond", "Recheck Cond", "Filter"):
                if node.get(key):
                    parts.append(f"{key}: {node[key]}")
            parts.append(f"buffers hit {node.get('Shared Hit Blocks', 0)} read {node.get('Shared Read Blocks', 0)}")
            if removed:
                parts.append(f"rows removed {removed}")
            scans.append(
                Scan(f"{node.get('Schema')}.{node['Relation Name']}", kind, out + removed, out, loops, "; ".join(parts))
            )
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return text, scans, float(plan.get("Execution Time", 0.0)) / 1000, int(plan["Plan"].get("Actual Rows", 0))


# the plan, its scans, its seconds and its result's rows, by dialect name
EXPLAIN: dict[str, Callable[[Settings, str, Path], tuple[str, list[Scan], float, int]]] = {
    "duckdb": explain_duckdb,
    "postgres": explain_postgres,
}


def excluded_plans(ctx: Context, names: list[str]) -> dict[str, str]:
    """PostgreSQL's plan (EXPLAIN, not run) of each excluded test as the last `dbt test` compiled it."""
    if dialect(ctx.settings).name != "postgres":
        return {}
    plans = {}
    for name in names:
        found = list((target_path() / "compiled").rglob(f"{name}.sql"))
        if len(found) == 1:
            plans[name] = "\n".join(row[0] for row in rows(ctx.settings, "explain " + found[0].read_text()))
    return plans


@dataclass
class Explained:
    model: str
    seconds: float
    scans: list[Scan]
    plan: str
    sql: str
    rows: int = 0


def explain_model(ctx: Context, model: str) -> Explained:
    sql = compiled_sql(ctx, model)
    name = dialect(ctx.settings).name
    log(f"EXPLAIN ANALYZE {model} ({name})")
    plan, scans, total, result_rows = EXPLAIN[name](ctx.settings, sql, ctx.folder)
    sizes: dict[str, int] = {}
    for scan in scans:
        if scan.relation not in sizes:
            try:
                sizes[scan.relation] = int(scalar(ctx.settings, f"select count(*) from {scan.relation}"))
            except Exception:
                sizes[scan.relation] = 0
        scan.table_rows = sizes[scan.relation]
    return Explained(model, round(total, 3), scans, plan, sql, result_rows)


# -- one target ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def compare_project(project_dir: str, folder: Path) -> Iterator[None]:
    """dbt invocations of another copy of the dbt project, with their own artifacts."""
    target = folder / f"target-{Path(project_dir).name}"
    with environ({"ELT_PROJECT_DIR": str(Path(project_dir).resolve()), "DBT_TARGET_PATH": str(target)}):
        yield


def compare_label(project_dir: str) -> str:
    return f"compare {Path(project_dir).name}"


def run_target(target: str, scale: Scale, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"elt-bench-{target}-"))
    log(f"{target}: working folder {folder}")
    result: dict[str, Any] = {"target": target, "orders": scale.orders, "history_loads": scale.history_loads}
    try:
        with fresh_warehouse(target, folder, args.keep) as warehouse_env:
            env = {**warehouse_env, **working_env(folder, "logs")}
            if args.project_dir:
                env["ELT_PROJECT_DIR"] = str(Path(args.project_dir).resolve())
            with environ(env):
                result.update(measure_target(target, scale, folder, args))
    finally:
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def measure_target(target: str, scale: Scale, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Steps 1 to 5 (bench/README.md) in the fresh warehouse the environment names; the figures."""
    settings = Settings.from_env()
    extra = ["--vars", f"{{lookback_versions: {args.lookback_versions}}}"] if args.lookback_versions is not None else []
    ctx = Context(settings, folder, extra)
    out: dict[str, Any] = {"project_dir": str(settings.project_dir), "dbt_extra": extra}

    log("tiny real load (simulator -> dlt)")
    tiny_real_load(settings, folder)
    templates = real_load_ids(settings)
    started = time.monotonic()
    land_history(settings, scale, templates)
    out["indexes"] = after_loads(settings, SOURCES)
    out["history_seconds"] = round(time.monotonic() - started, 1)
    out["raw_rows_history"] = raw_counts(settings)
    if target == "postgres":
        ctx.postmaster = postmaster(settings)
        ctx.server_log = enable_statement_log(settings)
        out["server"] = {
            "version": scalar(settings, "select version()"),
            **{s: scalar(settings, f"show {s}") for s in ("shared_buffers", "work_mem", "effective_cache_size")},
            "server_cpu_measured": ctx.postmaster is not None,
        }
    else:
        import duckdb

        out["server"] = {
            "version": f"duckdb {duckdb.__version__}",
            "threads": scalar(settings, "select current_setting('threads')"),
        }

    # Unit tests are left out as the test suite's builds leave them out: fixtures of constant size (not
    # what this measures), and one of them reads `this`, which a fresh warehouse does not have yet.
    build = ["build", "--exclude-resource-type", "unit_test"]
    if args.exclude:
        build += ["--exclude", *args.exclude]
    out["excluded"] = list(args.exclude)
    builds = [timed_build(ctx, "initial full refresh", [*build, "--full-refresh"])]
    out["change_1_rows"] = land_change(settings, scale, 1, templates)
    after_loads(settings, SOURCES)
    out["raw_rows"] = raw_counts(settings)
    builds.append(timed_build(ctx, "incremental", build))
    builds.append(timed_build(ctx, "full refresh", [*build, "--full-refresh"]))
    if args.exclude:
        timeout = {"PGOPTIONS": f"-c statement_timeout={args.test_timeout}s"} if target == "postgres" else {}
        out["test_timeout_s"] = args.test_timeout if timeout else None
        builds.append(timed_build(ctx, "excluded tests alone", ["test", "--select", *args.exclude], timeout))
        out["excluded_plans"] = excluded_plans(ctx, args.exclude)
        for project in args.compare_project:
            with compare_project(project, folder):
                alt = Context(Settings.from_env(), folder, extra, ctx.postmaster, ctx.server_log)
                label = f"excluded tests alone ({compare_label(project)})"
                builds.append(timed_build(alt, label, ["test", "--select", *args.exclude], timeout))
                plans = excluded_plans(alt, args.exclude)
                out["excluded_plans"].update({f"{name} ({compare_label(project)})": p for name, p in plans.items()})
    out["builds"] = [asdict(build) | {"cpu_s": round(build.cpu_s, 2)} for build in builds]

    out["change_2_rows"] = land_change(settings, scale, 2, templates)
    after_loads(settings, SOURCES)
    steady_state(settings)
    explained = []
    for model, upstream in EXPLAINED.items():
        if upstream:
            outcome = dbt(settings, ["run", "--select", *upstream], extra)
            if outcome.returncode != 0:
                raise RuntimeError(f"dbt run --select {' '.join(upstream)} failed")
        explained.append(explain_model(ctx, model))
        for project in args.compare_project:  # the same SELECT as another copy of the project writes it
            with compare_project(project, folder):
                alternative = explain_model(Context(Settings.from_env(), folder, extra), model)
            alternative.model += f" ({compare_label(project)})"
            explained.append(alternative)
    out["explained"] = [
        {
            "model": e.model,
            "seconds": e.seconds,
            "rows": e.rows,
            "scans": [asdict(s) | {"share": round(s.share, 4)} for s in e.scans],
        }
        for e in explained
    ]
    write_plans(RESULTS_DIR, target, scale.orders, out, explained)
    return out


def main(argv: list[str] | None = None) -> int:
    global RESULTS_DIR
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="What it does, step by step: bench/README.md."
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--target", choices=TARGET_CHOICES, default="both")
    parser.add_argument("--history-loads", type=int, default=100, help="synthetic completed loads the history spans")
    parser.add_argument(
        "--lookback-versions", type=int, default=None, help="dbt var lookback_versions (project default)"
    )
    parser.add_argument("--project-dir", help="another copy of the dbt project (ELT_PROJECT_DIR), to try a change")
    parser.add_argument(
        "--compare-project",
        action="append",
        default=[],
        help="another copy of the dbt project (a fix to try): its incremental SELECTs are explained beside the "
        "project's on the same state, and its version of the excluded tests is timed too",
    )
    parser.add_argument("--label", help="results file label (default from --orders, e.g. 1M)")
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=list(SLOW_TESTS),
        help="dbt nodes left out of the timed builds and timed alone after them (default: %(default)s; "
        "--exclude with no name runs the plain build)",
    )
    parser.add_argument("--test-timeout", type=int, default=300, help="statement timeout (s) of the excluded, PG")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and working folder")
    parser.add_argument("--results-dir", type=Path, default=None, help="where plans and figures go (bench/results)")
    args = parser.parse_args(argv)
    if args.results_dir is not None:
        RESULTS_DIR = args.results_dir.resolve()
    scale = Scale(args.orders, args.history_loads)
    if args.orders < args.history_loads * 10:
        parser.error("--orders must be at least 10 x --history-loads")
    label = args.label or scale.label
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for target in targets(args.target):
        result = run_target(target, scale, args)
        json_path(RESULTS_DIR, label, target).write_text(json.dumps(result, indent=1, default=str) + "\n")
        (RESULTS_DIR / f"incremental_{label}.md").write_text(markdown(RESULTS_DIR, label))
    text = markdown(RESULTS_DIR, label)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
