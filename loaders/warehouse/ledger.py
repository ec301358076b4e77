"""The run ledger: one row per `elt` command that writes (`ops.elt_runs`), one per source it loaded
(`ops.elt_run_sources`) and one per book it balanced (`ops.elt_run_books`, see books.py).

The harness writes it, not dbt: no `--full-refresh` rebuilds it and `elt reset` keeps it. A run's row is
written `running` when the run has its lock and completed when it ends, so a run killed on the way stays
`running` with no `finished_at` — `elt status` shows it as such until a later run marks it `abandoned`
(the lock proves nothing else is running). Every JSON event of the run carries the same `run_id`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loaders.core.events import log_event
from loaders.core.outcomes import RunLocked, SourceOutcome, root_cause
from loaders.core.settings import Settings
from loaders.warehouse import dialect, ops_tables
from loaders.warehouse.base import HeldLock
from loaders.warehouse.books import Book
from loaders.warehouse.ops_tables import RUN_BOOKS, RUN_SOURCES, RUNS

FINISH_PATIENCE_SECONDS = 60


def new_run_id() -> str:
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunEntry:
    """What one run did, as the ledger keeps it (filled in as the run goes)."""

    run_id: str
    command: str
    arguments: list[str]
    started_at: datetime = field(default_factory=now)
    sources: list[SourceOutcome] = field(default_factory=list)
    dbt_invocation_id: str | None = None
    models_built: int | None = None
    models_failed: int | None = None
    tests_passed: int | None = None
    tests_failed: int | None = None
    quarantine_opened: int | None = None
    quarantine_resolved: int | None = None
    books: list[Book] = field(default_factory=list)
    exit_code: int = 0
    error: str | None = None
    summary: str = ""
    phase: str = "start"  # what the run is doing now: what an interruption or a lost warehouse stopped
    lock: HeldLock = field(default_factory=HeldLock)  # the run lock it holds (not kept in the ledger)

    def guard(self) -> None:
        """Before the run writes again: WarehouseLost when the session holding its lock is gone."""
        self.lock.check()

    def finish(self, exit_code: int, summary: str, error: str | None = None) -> None:
        """What the run ends with: its exit code, its one-line summary and, when it failed, why."""
        self.exit_code, self.summary, self.error = int(exit_code), summary, error


def record_start(settings: Settings, run: RunEntry) -> None:
    """The run's row, `running`; and any run still `running` is marked `abandoned`: whoever calls this holds
    the run lock, so no other run can be in progress."""
    ops_tables.ensure(settings, ops_tables.LEDGER)
    warehouse = dialect(settings)
    with warehouse.connect(read_only=False) as conn:
        cursor = conn.cursor()
        abandoned = {"status": "abandoned", "error": "killed or crashed before it finished"}
        warehouse.update_rows(cursor, RUNS.qualified, abandoned, where=("status", "running"))
        cursor.execute(
            f"insert into {RUNS.qualified} (run_id, command, arguments, started_at, status)"
            f" values ({warehouse.placeholders(5)})",
            (run.run_id, run.command, json.dumps(run.arguments), run.started_at, "running"),
        )


def record_finish(
    settings: Settings, run: RunEntry, exit_code: int, error: str | None, summary: str, status: str | None = None
) -> bool:
    """Complete the run's row and write one row per source, in one transaction; whether it was written. A
    DuckDB file another process took meanwhile (a plain `dbt build`) and a warehouse that went away are
    waited for, up to FINISH_PATIENCE_SECONDS; after that the row stays `running` and the next run marks
    it `abandoned`."""
    warehouse = dialect(settings)
    deadline = time.monotonic() + FINISH_PATIENCE_SECONDS
    while True:
        try:
            _write_finish(settings, run, exit_code, error, summary, status)
            return True
        except RunLocked:
            if time.monotonic() > deadline:
                raise
        except Exception as exc:
            if not warehouse.connection_lost(exc):
                raise
            if time.monotonic() > deadline:
                log_event("ledger_unfinished", run_id=run.run_id, error=root_cause(exc))
                return False
        time.sleep(1)


def _write_finish(
    settings: Settings, run: RunEntry, exit_code: int, error: str | None, summary: str, status: str | None
) -> None:
    warehouse = dialect(settings)
    # where statements cannot be one transaction (Spark), the run's own row is completed last
    transactional = warehouse.transactional
    finished = {
        "finished_at": now(),
        "status": status or ("ok" if exit_code == 0 else "failed"),
        "exit_code": exit_code,
        "error": error,
        "dbt_invocation_id": run.dbt_invocation_id,
        "models_built": run.models_built,
        "models_failed": run.models_failed,
        "tests_passed": run.tests_passed,
        "tests_failed": run.tests_failed,
        "quarantine_opened": run.quarantine_opened,
        "quarantine_resolved": run.quarantine_resolved,
        "summary": summary,
    }
    with warehouse.connect(read_only=False) as conn:
        cursor = conn.cursor()
        if transactional:
            cursor.execute("begin")
            warehouse.update_rows(cursor, RUNS.qualified, finished, where=("run_id", run.run_id))
        for entry in run.sources:
            cursor.execute(
                f"insert into {RUN_SOURCES.qualified} values ({warehouse.placeholders(13)})",
                (
                    run.run_id,
                    entry.source,
                    "failed" if entry.error else "ok",
                    entry.error,
                    json.dumps(list(entry.load_ids)),
                    json.dumps(entry.cursor_before, default=str, sort_keys=True),
                    json.dumps(entry.cursor_after, default=str, sort_keys=True),
                    entry.files_read,
                    entry.extracted,
                    entry.landed,
                    entry.dead_lettered,
                    entry.retries,
                    entry.resumed_packages,
                ),
            )
        for book in run.books:
            cursor.execute(
                f"insert into {RUN_BOOKS.qualified} values ({warehouse.placeholders(6)})",
                (run.run_id, book.name, book.total_name, book.total, json.dumps(book.parts), book.difference),
            )
        if transactional:
            cursor.execute("commit")
        else:
            warehouse.update_rows(cursor, RUNS.qualified, finished, where=("run_id", run.run_id))
