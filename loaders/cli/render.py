"""How commands show what they found to a person: rich tables on stdout."""

from __future__ import annotations

import json
import sys
from datetime import datetime

from rich.console import Console
from rich.table import Table

from loaders.core.timestamps import as_utc
from loaders.ops.dead_letters import DeadLetter
from loaders.ops.status import Status


def render_status(status: Status) -> None:
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


def describe_age(hours: float) -> str:
    if hours < 1:
        return f"{max(hours * 60, 0):.0f}m"
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def render_dead_letters(letters: list[DeadLetter], now: datetime, include_resolved: bool) -> None:
    # a pipe or a file gets whole lines (ids and locations unbroken, for grep); a terminal its own width
    console = Console(width=None if sys.stdout.isatty() else 250)
    kind = "dead letters" if include_resolved else "open dead letters"
    if not letters:
        console.print(f"no {kind}")
        return
    table = Table(title=f"{kind} ({len(letters)})")
    for column in ("source", "resource", "location", "error", "age", "dead_letter_id"):
        table.add_column(column, no_wrap=column in ("location", "dead_letter_id"))
    if include_resolved:
        table.add_column("resolved")
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
        table.add_row(*row)
    console.print(table)
