"""`elt status`: the first thing the engineer on call asks — what ran, where each source stands, what is open.

It only reads. On PostgreSQL it answers while a run holds the lock. On DuckDB a run in progress holds the
database file, so the warehouse's part (ledger, freshness, quarantine) is reported as busy and only what the
machine knows without it is shown: each source's cursor from dlt's local state and its pending packages.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loaders.entities import ENTITIES
from loaders.settings import Settings
from loaders.warehouse import RunLocked, connect

RUN_COLUMNS = (
    "run_id",
    "command",
    "started_at",
    "finished_at",
    "status",
    "exit_code",
    "models_built",
    "models_failed",
    "tests_failed",
    "quarantine_opened",
    "quarantine_resolved",
    "error",
)


@dataclass
class SourceStatus:
    source: str
    cursor: dict[str, Any]
    pending_packages: int
    last_load_at: str | None = None
    age_hours: float | None = None
    freshness: str = "unknown"  # pass, warn, error (the thresholds of the source's dbt freshness config)
    dead_letters_last_run: int | None = None
    dead_letters_open: int | None = None  # not yet resolved by `elt dead-letters replay`, from every load


@dataclass
class Status:
    target: str
    warehouse: str = "ok"  # or why it could not be read
    runs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # table, reason, open
    books: list[dict[str, Any]] = field(default_factory=list)  # the last run's books (loaders/books.py)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, indent=2)


def freshness_limits(settings: Settings, source: str) -> dict[str, float]:
    """warn_after / error_after in hours, from the source's own dbt declaration (one place for both)."""
    path = settings.project_dir / "models" / "staging" / source / f"_{source}__sources.yml"
    declared = yaml.safe_load(Path(path).read_text())["sources"][0].get("freshness") or {}
    hours = {"minute": 1 / 60, "hour": 1, "day": 24}
    return {kind: limit["count"] * hours[limit["period"]] for kind, limit in declared.items() if limit}


def verdict(age_hours: float, limits: dict[str, float]) -> str:
    if "error_after" in limits and age_hours > limits["error_after"]:
        return "error"
    if "warn_after" in limits and age_hours > limits["warn_after"]:
        return "warn"
    return "pass"


def pending_packages(settings: Settings, source: str) -> int:
    from loaders.pipelines import pipeline

    try:
        pipe = pipeline(settings, source)
        return len(pipe.list_extracted_load_packages()) + len(pipe.list_normalized_load_packages())
    except Exception:  # no working folder yet
        return 0


def collect(settings: Settings, sources: list[str], limit: int = 10) -> Status:
    from loaders.pipelines import cursor_positions

    status = Status(target=settings.target)
    for source in sources:
        cursor = cursor_positions(settings, source)
        status.sources.append(SourceStatus(source, cursor, pending_packages(settings, source)))
    if settings.target == "duckdb" and not settings.duckdb_path.exists():
        status.warehouse = f"nothing loaded yet: {settings.duckdb_path} does not exist"
        return status
    try:
        with connect(settings) as conn:
            read_warehouse(settings, conn, status, limit)
    except RunLocked as exc:
        status.warehouse = f"busy: {exc}"
    return status


def rows(conn: Any, sql: str) -> list[tuple[Any, ...]] | None:
    """The query's rows, or None when what it reads does not exist yet (never built, never loaded)."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    except Exception:  # the harness's connections autocommit: a failed read leaves no transaction to undo
        return None


def read_warehouse(settings: Settings, conn: Any, status: Status, limit: int) -> None:
    from loaders.dead_letters import REPLAY_COMMAND, open_counts

    runs = rows(conn, f"select {', '.join(RUN_COLUMNS)} from ops.elt_runs order by started_at desc limit {limit}")
    status.runs = [dict(zip(RUN_COLUMNS, run, strict=True)) for run in runs or []]
    now = time.time()
    for source in status.sources:
        # the source's own (scheduled) loads, under its dlt schema: a backfill or a dead-letter replay lands
        # into the same dataset under a schema of its own, and says nothing of the source's freshness
        newest = rows(
            conn,
            f"select max(load_id) from raw_{source.source}._dlt_loads where status = 0"
            f" and schema_name = '{source.source}'",
        )
        if newest and newest[0][0] is not None:
            loaded = float(newest[0][0])
            source.last_load_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(loaded))
            source.age_hours = round((now - loaded) / 3600, 2)
            source.freshness = verdict(source.age_hours, freshness_limits(settings, source.source))
        last = rows(
            conn,
            "select load_ids from ops.elt_run_sources join ops.elt_runs using (run_id)"
            f" where source = '{source.source}' and command <> '{REPLAY_COMMAND}' order by started_at desc limit 1",
        )
        if last:
            ids = json.loads(last[0][0])
            counted = rows(
                conn,
                f"select count(*) from raw_{source.source}.dead_letters where _dlt_load_id in"
                f" ({', '.join(repr(str(i)) for i in ids) or 'null'})",
            )
            source.dead_letters_last_run = int(counted[0][0]) if counted else 0
    try:
        counts = open_counts(conn, [source.source for source in status.sources])
        for source in status.sources:
            source.dead_letters_open = counts[source.source]
    except Exception:  # a raw table half there: the figure stays unknown, the rest of the status stands
        pass
    books = rows(
        conn,
        "select book, total_name, total, parts, difference from ops.elt_run_books where run_id ="
        " (select run_id from ops.elt_runs where run_id in (select run_id from ops.elt_run_books)"
        " order by started_at desc limit 1) order by book",
    )
    status.books = [
        {"book": book, "total_name": name, "total": total, "parts": json.loads(parts), "difference": difference}
        for book, name, total, parts, difference in books or []
    ]
    for entity in ENTITIES:
        table = f"quarantine.{entity.name}"
        found = rows(conn, f"select failed_rules, count(*) from {table} where not is_resolved group by failed_rules")
        by_reason: dict[str, int] = {}
        for failed_rules, count in found or []:
            for reason in str(failed_rules).split(","):
                by_reason[reason] = by_reason.get(reason, 0) + int(count)
        status.quarantine += [
            {"table": table, "reason": reason, "open": count} for reason, count in sorted(by_reason.items())
        ]


def render(status: Status) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if status.warehouse != "ok":
        console.print(f"[yellow]warehouse ({status.target}) not read[/yellow]: {status.warehouse}")
    runs = Table(title=f"last runs ({status.target})")
    for column in ("run", "command", "started (UTC)", "took", "status", "exit", "models", "quarantine +/-", "error"):
        runs.add_column(column)
    for run in status.runs:
        took = run["finished_at"] - run["started_at"] if run["finished_at"] else None
        runs.add_row(
            str(run["run_id"])[:8],
            run["command"],
            str(run["started_at"])[:19],
            f"{took.total_seconds():.0f}s" if took else "-",
            run["status"],
            "-" if run["exit_code"] is None else str(run["exit_code"]),
            "-" if run["models_built"] is None else f"{run['models_built']} ok, {run['models_failed']} failed",
            "-" if run["quarantine_opened"] is None else f"+{run['quarantine_opened']} / -{run['quarantine_resolved']}",
            (run["error"] or "")[:60],
        )
    console.print(runs)
    sources = Table(title="sources")
    columns = (
        "source",
        "cursor",
        "last load (UTC)",
        "age h",
        "freshness",
        "pending packages",
        "dead letters",
        "open d.l.",
    )
    for column in columns:
        sources.add_column(column)
    for source in status.sources:
        sources.add_row(
            source.source,
            json.dumps(source.cursor, default=str),
            source.last_load_at or "-",
            "-" if source.age_hours is None else f"{source.age_hours:.1f}",
            source.freshness,
            str(source.pending_packages),
            "-" if source.dead_letters_last_run is None else str(source.dead_letters_last_run),
            "-" if source.dead_letters_open is None else str(source.dead_letters_open),
        )
    console.print(sources)
    quarantine = Table(title="open quarantine rows")
    for column in ("table", "reason", "open"):
        quarantine.add_column(column)
    for row in status.quarantine:
        quarantine.add_row(row["table"], row["reason"], str(row["open"]))
    console.print(quarantine)
    books = Table(title="books of the last run that kept them")
    for column in ("book", "total", "= parts", "difference"):
        books.add_column(column)
    for book in status.books:
        parts = " + ".join(f"{name} {count}" for name, count in book["parts"].items())
        books.add_row(book["book"], f"{book['total_name']} {book['total']}", parts, str(book["difference"]))
    console.print(books)
