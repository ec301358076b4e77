"""How commands show what they found to a person: rich tables on stdout."""

from __future__ import annotations

import json
import sys
from datetime import datetime

from rich.console import Console
from rich.table import Table

from loaders.core.events import json_default
from loaders.core.timestamps import as_utc, iso
from loaders.ops.dead_letters import DeadLetter
from loaders.ops.status import Status

PIPE_WIDTH = 250


def console() -> Console:
    """stdout as rich draws on it: a terminal's own width; a pipe or a file wide enough for whole lines."""
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def table(title: str, columns: tuple[str, ...]) -> Table:
    """A table whose cells wrap rather than cut a value short."""
    drawn = Table(title=title)
    for column in columns:
        drawn.add_column(column, overflow="fold")
    return drawn


def render_status(status: Status) -> None:
    out = console()
    if status.warehouse != "ok":
        out.print(f"[yellow]warehouse ({status.target}) not read[/yellow]: {status.warehouse}")
    runs = table(
        f"last runs ({status.target})",
        ("run", "command", "started (UTC)", "took", "status", "exit", "models", "quarantine +/-", "error"),
    )
    for run in status.runs:
        took = run["finished_at"] - run["started_at"] if run["finished_at"] else None
        runs.add_row(
            str(run["run_id"]),
            run["command"],
            iso(run["started_at"]),
            f"{took.total_seconds():.0f}s" if took else "-",
            run["status"],
            "-" if run["exit_code"] is None else str(run["exit_code"]),
            "-" if run["models_built"] is None else f"{run['models_built']} ok, {run['models_failed']} failed",
            "-" if run["quarantine_opened"] is None else f"+{run['quarantine_opened']} / -{run['quarantine_resolved']}",
            run["error"] or "",
        )
    out.print(runs)
    sources = table(
        "sources",
        (
            "source",
            "cursor",
            "last load (UTC)",
            "age h",
            "freshness",
            "dbt freshness",
            "pending packages",
            "dead letters",
            "open d.l.",
        ),
    )
    for source in status.sources:
        sources.add_row(
            source.source,
            json.dumps(source.cursor, default=json_default),
            source.last_load_at or "-",
            "-" if source.age_hours is None else f"{source.age_hours:.1f}",
            source.freshness,
            f"{source.dbt_freshness} at {source.dbt_freshness_checked_at}" if source.dbt_freshness else "-",
            str(source.pending_packages),
            "-" if source.dead_letters_last_run is None else str(source.dead_letters_last_run),
            "-" if source.dead_letters_open is None else str(source.dead_letters_open),
        )
    out.print(sources)
    out.print(f"dlt's working folder: {status.pipelines_dir} (dlt pipeline --pipelines-dir <it> elt_<source> info)")
    quarantine = table("open quarantine rows", ("table", "reason", "open"))
    for row in status.quarantine:
        quarantine.add_row(row["table"], row["reason"], str(row["open"]))
    out.print(quarantine)
    books = table("books of the last run that kept them", ("book", "total", "= parts", "difference"))
    for book in status.books:
        parts = " + ".join(f"{name} {count}" for name, count in book["parts"].items())
        books.add_row(book["book"], f"{book['total_name']} {book['total']}", parts, str(book["difference"]))
    out.print(books)


def describe_age(hours: float) -> str:
    if hours < 1:
        return f"{max(hours * 60, 0):.0f}m"
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def render_dead_letters(letters: list[DeadLetter], now: datetime, include_resolved: bool) -> None:
    out = console()  # a pipe or a file gets whole lines (ids and locations unbroken, for grep)
    kind = "dead letters" if include_resolved else "open dead letters"
    if not letters:
        out.print(f"no {kind}")
        return
    drawn = Table(title=f"{kind} ({len(letters)})")
    for column in ("source", "resource", "location", "error", "age", "dead_letter_id"):
        drawn.add_column(column, no_wrap=column in ("location", "dead_letter_id"))
    if include_resolved:
        drawn.add_column("resolved")
    for letter in letters:
        row = [
            letter.source,
            letter.resource,
            letter.location,
            letter.error,
            describe_age(letter.age_hours(now)),
            letter.dead_letter_id,
        ]
        if include_resolved:
            resolution = letter.resolution
            row.append(
                "open" if resolution is None else f"{resolution.how} {as_utc(resolution.resolved_at):%Y-%m-%d %H:%M}"
            )
        drawn.add_row(*row)
    out.print(drawn)
