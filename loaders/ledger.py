"""The run ledger: one row per `elt` command that writes (`ops.elt_runs`), one per source it loaded
(`ops.elt_run_sources`) and one per book it balanced (`ops.elt_run_books`, see loaders/books.py).

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
from typing import TYPE_CHECKING

from loaders.settings import Settings
from loaders.warehouse import RunLocked, connect, spark_ddl, table_names, update_rows

if TYPE_CHECKING:
    from loaders.books import Book
    from loaders.harness import SourceOutcome

RUNS_TABLE = "ops.elt_runs"
SOURCES_TABLE = "ops.elt_run_sources"
BOOKS_TABLE = "ops.elt_run_books"
FINISH_PATIENCE_SECONDS = 60

DDL = (
    "create schema if not exists ops",
    f"""create table if not exists {RUNS_TABLE} (
        run_id varchar primary key,
        command varchar not null,
        arguments varchar not null,
        started_at timestamp with time zone not null,
        finished_at timestamp with time zone,
        status varchar not null,
        exit_code integer,
        error varchar,
        dbt_invocation_id varchar,
        models_built integer,
        models_failed integer,
        tests_passed integer,
        tests_failed integer,
        quarantine_opened integer,
        quarantine_resolved integer,
        summary varchar
    )""",
    f"""create table if not exists {SOURCES_TABLE} (
        run_id varchar not null,
        source varchar not null,
        status varchar not null,
        error varchar,
        load_ids varchar not null,
        cursor_before varchar,
        cursor_after varchar,
        files_read integer,
        extracted integer not null,
        landed integer not null,
        dead_lettered integer not null,
        retries integer not null,
        resumed_packages integer not null,
        primary key (run_id, source)
    )""",
    f"""create table if not exists {BOOKS_TABLE} (
        run_id varchar not null,
        book varchar not null,
        total_name varchar not null,
        total integer not null,
        parts varchar not null,
        difference integer not null,
        primary key (run_id, book)
    )""",
)
TABLES = (RUNS_TABLE, SOURCES_TABLE, BOOKS_TABLE)


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


def marks(settings: Settings, n: int) -> str:
    """n query parameters, in the driver's style (psycopg2's and PyHive's %s, DuckDB's ?)."""
    return ", ".join(["?" if settings.target == "duckdb" else "%s"] * n)


def ensure_ledger(settings: Settings) -> None:
    """Create the ledger's tables when they are missing. Checked first: with split roles the loader may
    write the ledger (`elt grants`) but not create anything in `ops`, not even `if not exists`."""
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        if {table.split(".")[1] for table in TABLES} <= table_names(settings, cursor, "ops"):
            return
        for statement in DDL:
            cursor.execute(spark_ddl(statement) if settings.target == "spark" else statement)


def record_start(settings: Settings, run: RunEntry) -> None:
    """The run's row, `running`; and any run still `running` is marked `abandoned`: whoever calls this holds
    the run lock, so no other run can be in progress."""
    ensure_ledger(settings)
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        abandoned = {"status": "abandoned", "error": "killed or crashed before it finished"}
        update_rows(settings, cursor, RUNS_TABLE, abandoned, where=("status", "running"))
        cursor.execute(
            f"insert into {RUNS_TABLE} (run_id, command, arguments, started_at, status) values ({marks(settings, 5)})",
            (run.run_id, run.command, json.dumps(run.arguments), run.started_at, "running"),
        )


def record_finish(settings: Settings, run: RunEntry, exit_code: int, error: str | None, summary: str) -> None:
    """Complete the run's row and write one row per source, in one transaction. A DuckDB file another
    process took meanwhile (a plain `dbt build`) is waited for, up to FINISH_PATIENCE_SECONDS; after that
    the row stays `running` and the next run marks it `abandoned`."""
    deadline = time.monotonic() + FINISH_PATIENCE_SECONDS
    while True:
        try:
            return _write_finish(settings, run, exit_code, error, summary)
        except RunLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _write_finish(settings: Settings, run: RunEntry, exit_code: int, error: str | None, summary: str) -> None:
    transactional = settings.target != "spark"  # Spark commits each statement; the run's row goes last
    finished = {
        "finished_at": now(),
        "status": "ok" if exit_code == 0 else "failed",
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
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        if transactional:
            cursor.execute("begin")
            update_rows(settings, cursor, RUNS_TABLE, finished, where=("run_id", run.run_id))
        for entry in run.sources:
            cursor.execute(
                f"insert into {SOURCES_TABLE} values ({marks(settings, 13)})",
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
                f"insert into {BOOKS_TABLE} values ({marks(settings, 6)})",
                (run.run_id, book.name, book.total_name, book.total, json.dumps(book.parts), book.difference),
            )
        if transactional:
            cursor.execute("commit")
        else:
            update_rows(settings, cursor, RUNS_TABLE, finished, where=("run_id", run.run_id))
