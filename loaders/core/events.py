"""What a run says while it works, through structlog.

- stderr not a terminal (a scheduler, a log shipper, a test): one JSON object per line — `ts`, `event`, the
  event's fields, and last the `run_id` of the run in progress (bound by `bound_run`), so
  `"event": "load_started", "source": "shop_api"` reads the same with or without a run.
- stderr a terminal (an engineer at a shell): the same events as readable lines, and progress bars on the
  long work — records extracted per source table as the loaders hand them to dlt, and a bar of dbt's
  nodes as they finish.

The one-line summary of a command is not an event: it goes to stdout.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

structlog.configure(cache_logger_on_first_use=False)  # the renderer depends on where stderr points now


def interactive() -> bool:
    return sys.stderr.isatty()


def _in_order(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    run_id = event_dict.pop("run_id", None)
    ordered = {"ts": event_dict.pop("ts"), "event": event_dict.pop("event"), **event_dict}
    if run_id is not None:
        ordered["run_id"] = run_id
    return ordered


class _Stderr:
    """structlog's logger: the rendered line to whatever `sys.stderr` is at the time (pytest swaps it)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    info = msg


def _logger() -> Any:
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True) if interactive() else structlog.processors.JSONRenderer(default=str)
    )
    return structlog.wrap_logger(
        _Stderr(),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%SZ", utc=True, key="ts"),
            _in_order,
            renderer,
        ],
    )


def log_event(event: str, **fields: Any) -> None:
    _logger().info(event, **fields)


def current_run_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("run_id")


@contextlib.contextmanager
def bound_run(run_id: str) -> Iterator[None]:
    """Every event logged inside the block carries `run_id`."""
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        yield


class LoadProgress:
    """Records landed or dead-lettered per source table as the loaders hand them to dlt, one bar each."""

    def __init__(self) -> None:
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=Console(stderr=True)
        )
        self.tasks: dict[str, Any] = {}

    def advance(self, table: str, records: int) -> None:
        if table not in self.tasks:
            self.tasks[table] = self.bar.add_task(table, total=None, count=0)
        task = self.tasks[table]
        count = self.bar.tasks[task].fields["count"] + records
        self.bar.update(task, count=count, description=f"{table}: {count} records extracted")


@contextlib.contextmanager
def load_progress() -> Iterator[Callable[[str, int], None] | None]:
    """Progress bars of the loaders while the block runs, when stderr is a terminal: yields what to tell of
    records handed to dlt (`(table, records)`), or None when nobody watches."""
    if not interactive():
        yield None
        return
    progress = LoadProgress()
    with progress.bar:
        yield progress.advance


DBT_NODE_DONE = re.compile(r"\b(\d+) of (\d+) (?:OK|PASS|ERROR|FAIL|WARN|SKIP|NO-OP)\b")


class DbtProgress:
    """A bar of dbt's nodes, advanced by each of dbt's own `N of M OK …` lines; dbt's output goes above it."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("dbt build"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self.console
        )
        self.task = self.bar.add_task("dbt", total=None)

    def __enter__(self) -> DbtProgress:
        self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.bar.stop()

    def line(self, text: str) -> None:
        self.console.print(text.rstrip("\n"), markup=False, highlight=False)
        done = DBT_NODE_DONE.search(text)
        if done:
            self.bar.update(self.task, advance=1, total=int(done.group(2)))
