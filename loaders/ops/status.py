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

from loaders.core.events import json_default
from loaders.core.outcomes import RunLocked
from loaders.core.registry import ENTITIES, LOADS_TABLE, raw_dataset
from loaders.core.settings import Settings
from loaders.core.timestamps import iso
from loaders.landing.pipelines import cursor_positions, pending_packages
from loaders.ops.dbt import harness_target_path, run_dbt
from loaders.ops.dead_letters import REPLAY_COMMAND, open_counts
from loaders.warehouse import dialect
from loaders.warehouse.base import Dialect

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
    # `dbt source freshness`'s own verdict on the source (its worst table) and when it was checked, from the
    # last results (`elt status --freshness` runs it), or None when dbt has not checked it
    dbt_freshness: str | None = None
    dbt_freshness_checked_at: str | None = None
    dead_letters_last_run: int | None = None
    dead_letters_open: int | None = None  # not yet resolved by `elt dead-letters replay`, from every load


@dataclass
class Status:
    target: str
    warehouse: str = "ok"  # or why it could not be read
    runs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # table, reason, open
    books: list[dict[str, Any]] = field(default_factory=list)  # the last run's books (warehouse/books.py)
    pipelines_dir: str = ""  # dlt's working folder: `dlt pipeline --pipelines-dir <it> elt_<source> info`

    def to_json(self) -> str:
        """One JSON document; every instant in ISO-8601 UTC (`2024-03-01T06:00:00Z`)."""
        return json.dumps(asdict(self), default=json_default, indent=2)


def freshness_limits(settings: Settings, source: str) -> dict[str, float]:
    """warn_after / error_after in hours, from the source's own dbt declaration (one place for both)."""
    path = settings.project_dir / "models" / "staging" / source / f"_{source}__sources.yml"
    declared_source = yaml.safe_load(Path(path).read_text())["sources"][0]
    # under `config:` since dbt 1.10, at the source's top level before
    declared = (declared_source.get("config") or {}).get("freshness") or declared_source.get("freshness") or {}
    hours = {"minute": 1 / 60, "hour": 1, "day": 24}
    return {kind: limit["count"] * hours[limit["period"]] for kind, limit in declared.items() if limit}


def verdict(age_hours: float, limits: dict[str, float]) -> str:
    if "error_after" in limits and age_hours > limits["error_after"]:
        return "error"
    if "warn_after" in limits and age_hours > limits["warn_after"]:
        return "warn"
    return "pass"


def dbt_freshness(settings: Settings) -> dict[str, tuple[str, str]]:
    """Per source, dbt's freshness verdict (the worst of its tables) and when dbt checked, from the newest
    `sources.json` of a `dbt source freshness`: the harness's own or a plain dbt's."""
    own = harness_target_path(settings)
    results = [folder / "sources.json" for folder in (own, own.parent) if (folder / "sources.json").exists()]
    if not results:
        return {}
    newest = max(results, key=lambda path: path.stat().st_mtime)
    document = json.loads(newest.read_text())
    checked = document.get("metadata", {}).get("generated_at")
    order = {"pass": 0, "warn": 1, "error": 2, "runtime error": 3}
    verdicts: dict[str, tuple[str, str]] = {}
    for result in document.get("results", []):
        source = result["unique_id"].split(".")[2]  # source.<project>.<source>.<table>
        status = str(result.get("status"))
        if order.get(status, -1) >= order.get(verdicts.get(source, ("", ""))[0], -1):
            verdicts[source] = (status, iso(checked) if checked else "")
    return verdicts


def check_freshness(settings: Settings) -> None:
    """`dbt source freshness` with the warehouse's settings (every source, as plain dbt checks them)."""
    run_dbt(settings, ["source", "freshness"])


def collect(settings: Settings, sources: list[str], limit: int = 10) -> Status:
    warehouse = dialect(settings)
    status = Status(target=warehouse.name, pipelines_dir=str(warehouse.pipelines_dir()))
    for source in sources:
        cursor = cursor_positions(settings, source)
        status.sources.append(SourceStatus(source, cursor, pending_packages(settings, source)))
    missing = warehouse.not_created_yet()
    if missing is not None:
        status.warehouse = missing
        return status
    try:
        with warehouse.connect() as conn:
            read_warehouse(settings, warehouse, conn, status, limit)
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


def read_warehouse(settings: Settings, warehouse: Dialect, conn: Any, status: Status, limit: int) -> None:
    runs = rows(conn, f"select {', '.join(RUN_COLUMNS)} from ops.elt_runs order by started_at desc limit {limit}")
    status.runs = [dict(zip(RUN_COLUMNS, run, strict=True)) for run in runs or []]
    now = time.time()
    for source in status.sources:
        # the source's own (scheduled) loads, under its dlt schema: a backfill or a dead-letter replay lands
        # into the same dataset under a schema of its own, and says nothing of the source's freshness
        newest = rows(
            conn,
            f"select max(load_id) from {raw_dataset(source.source)}.{LOADS_TABLE} where status = 0"
            f" and schema_name = '{source.source}'",
        )
        if newest and newest[0][0] is not None:
            loaded = float(newest[0][0])
            source.last_load_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(loaded))
            source.age_hours = round((now - loaded) / 3600, 2)
            source.freshness = verdict(source.age_hours, freshness_limits(settings, source.source))
    checked = dbt_freshness(settings)
    for source in status.sources:
        source.dbt_freshness, source.dbt_freshness_checked_at = checked.get(source.source, (None, None))
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
        counts = open_counts(warehouse, conn, [source.source for source in status.sources])
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
