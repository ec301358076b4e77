"""What a command says while it works, through structlog.

- stderr not a terminal (a scheduler, a log shipper, a test): every line of stderr is one JSON object —
  `ts`, `event`, the event's fields, and last the `run_id` of the run in progress (bound by `bound_run`).
  dbt's own messages (its JSON log) and Python's and dlt's log records are carried as events too
  (`dbt_log`, `log`), so `jq` reads the whole stream.
- stderr a terminal (an engineer at a shell): the same events as readable lines (values as text, never
  Python reprs), and one progress display per phase: records extracted per source table while the loads
  run (each table's line done when its source is), then a bar of dbt's nodes that ends at its total.
  dbt's own lines are shown only with `ELT_DBT_LOG=1`.

The one-line summary of a command is not an event: it goes to stdout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from loaders.core.timestamps import iso

structlog.configure(cache_logger_on_first_use=False)  # the renderer depends on where stderr points now


def interactive() -> bool:
    return sys.stderr.isatty()


def show_dbt_log() -> bool:
    """On a terminal, whether dbt's own lines are shown above its progress bar (`ELT_DBT_LOG=1`)."""
    return os.environ.get("ELT_DBT_LOG", "").lower() in ("1", "true", "yes")


def as_text(value: Any) -> Any:
    """A value as a person reads it: instants in ISO-8601 UTC, structures as compact JSON."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=json_default, separators=(",", ":"))
    return value


def json_default(value: Any) -> Any:
    """What JSON cannot hold as it is: instants as ISO-8601 UTC, anything else as its text."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _in_order(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    run_id = event_dict.pop("run_id", None)
    ordered = {"ts": event_dict.pop("ts"), "event": event_dict.pop("event"), **event_dict}
    if run_id is not None:
        ordered["run_id"] = run_id
    return ordered


def _readable(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {name: as_text(value) for name, value in event_dict.items()}


class _Stderr:
    """structlog's logger: the rendered line to whatever `sys.stderr` is at the time (pytest swaps it)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    info = msg


def _logger() -> Any:
    steps: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%SZ", utc=True, key="ts"),
        _in_order,
    ]
    if interactive():
        steps += [_readable, structlog.dev.ConsoleRenderer(colors=True)]
    else:
        steps.append(structlog.processors.JSONRenderer(default=json_default))
    return structlog.wrap_logger(_Stderr(), processors=steps)


def log_event(event: str, **fields: Any) -> None:
    _logger().info(event, **fields)


def current_run_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("run_id")


@contextlib.contextmanager
def bound_run(run_id: str) -> Iterator[None]:
    """Every event logged inside the block carries `run_id`."""
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        yield


class _AsEvents(logging.Handler):
    """Python's log records (dlt's, warnings) as events, so nothing else writes lines to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            log_event("log", logger=record.name, level=record.levelname.lower(), message=record.getMessage())
        except Exception:  # a log record must never fail the run
            self.handleError(record)


def route_logging() -> None:
    """Send the root logger's records, dlt's and Python's warnings through `log_event`. dlt gives its logger
    the handler it finds on it, so it is put there before dlt starts logging."""
    logging.captureWarnings(True)
    for name in ("", "dlt"):
        logger = logging.getLogger(name)
        if not any(isinstance(handler, _AsEvents) for handler in logger.handlers):
            logger.handlers.insert(0, _AsEvents())
    logging.getLogger("dlt").propagate = False


class LoadProgress:
    """Records landed or dead-lettered per source table as the loaders hand them to dlt, one line each; a
    source's lines are marked done when its load ends."""

    def __init__(self) -> None:
        self.bar = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.tasks: dict[str, TaskID] = {}
        self.counts: dict[str, int] = {}

    def advance(self, table: str, records: int) -> None:
        if table not in self.tasks:
            self.tasks[table] = self.bar.add_task(table, total=None)
            self.counts[table] = 0
        self.counts[table] += records
        self.bar.update(self.tasks[table], description=f"{table}: {self.counts[table]} records extracted")

    def source_done(self, source: str) -> None:
        for table, task in self.tasks.items():
            if table.split(".", 1)[0] == source:
                self.bar.update(task, total=self.counts[table], completed=self.counts[table])


@contextlib.contextmanager
def load_progress() -> Iterator[LoadProgress | None]:
    """The loaders' progress display while the block runs, when stderr is a terminal (None otherwise)."""
    if not interactive():
        yield None
        return
    progress = LoadProgress()
    with progress.bar:
        yield progress


class DbtProgress:
    """A bar of dbt's nodes, advanced by each node's result in dbt's JSON log, ending at its total."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("dbt build"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self.console
        )
        self.task = self.bar.add_task("dbt", total=None)
        self.done: set[int] = set()
        self.total: int | None = None

    def __enter__(self) -> DbtProgress:
        self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.total is not None:
            self.bar.update(self.task, total=self.total, completed=len(self.done))
        self.bar.stop()

    def node_finished(self, index: int, total: int) -> None:
        self.total = total
        self.done.add(index)
        self.bar.update(self.task, total=total, completed=len(self.done))

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)
