"""The manifest of deliveries taken, and reading settlement CSVs record by record.

The manifest (see the package docstring for its rules) is plain data in dlt's resource state; this
module only decides, from a listing, which deliveries are new and in what order they are taken.

A damaged row (wrong field count, undecodable bytes, a csv error) becomes a dead letter and the rows
around it go on; BOMs, CRLF line ends and quoted fields with embedded newlines are read as CSV allows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# A legitimate field may be large (free-text notes); csv's 128 KiB default would dead-letter it.
csv.field_size_limit(64 * 1024 * 1024)


Identity = list[int | None]
"""What tells two deliveries of one path apart: [size in bytes, modification time in µs since the epoch]."""


@dataclass(frozen=True)
class Delivery:
    path: str  # relative to the folder: the manifest's key
    name: str  # the file name, landed as `_source_file`
    identity: Identity
    delivered_at: datetime


class Manifest:
    """The deliveries already taken, kept in the resource state (committed with the rows):

    `files`: {path: identity}; `next_seq`: the `_delivery_seq` base of the next delivery taken;
    `delivered_until`: the latest `_delivered_at` taken, in µs (so later deliveries never sort before).
    """

    def __init__(self, state: dict[str, Any]) -> None:
        state.pop("incremental", None)  # the modification-time cursor this manifest replaced
        self._state = state
        self._files: dict[str, Identity] = state.setdefault("files", {})
        state.setdefault("next_seq", 0)

    @property
    def next_seq(self) -> int:
        return int(self._state["next_seq"])

    def new_deliveries(self, listing: Iterable[Mapping[str, Any]], started: datetime) -> list[Delivery]:
        """The listed files not yet taken as they are now, in the order they are to be taken."""
        floor = self._state.get("delivered_until")
        new = []
        for file in listing:
            modified = file["modification_date"]
            identity = [file.get("size_in_bytes"), _micros(modified)]
            if self._files.get(file["relative_path"]) == identity:
                continue
            delivered_at = min(modified, started)
            if floor is not None:
                delivered_at = max(delivered_at, _from_micros(floor))
            new.append(Delivery(file["relative_path"], file["file_name"], identity, delivered_at))
        return sorted(new, key=lambda delivery: (delivery.delivered_at, delivery.path))

    def take(self, delivery: Delivery, last_line: int) -> None:
        """Record a delivery as taken; its records used `next_seq` + line, up to `last_line`."""
        self._files[delivery.path] = delivery.identity
        self._state["next_seq"] = self.next_seq + last_line + 1
        taken = _micros(delivery.delivered_at)
        self._state["delivered_until"] = max(taken, self._state.get("delivered_until") or taken)


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


@dataclass(frozen=True)
class CsvRecord:
    line: int
    raw_text: str
    fields: dict[str, str] | None
    error: str | None = None


class _LineFeed:
    """Hands decoded lines to csv.reader and remembers which physical lines made up each record."""

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self._lines = lines
        self.taken: list[str] = []
        self.first_line = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        number, text = next(self._lines)
        if not self.taken:
            self.first_line = number
        self.taken.append(text)
        return text

    def take(self) -> tuple[int, str]:
        raw, self.taken = "".join(self.taken), []
        return self.first_line, raw


def read_csv_records(chunks: Iterable[bytes]) -> Iterator[CsvRecord]:
    """Yield every record of a CSV file given as lines of bytes, the header row naming the fields."""
    undecodable: list[CsvRecord] = []

    def decoded() -> Iterator[tuple[int, str]]:
        for number, line in enumerate(chunks, start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = line.decode("utf-8", errors="backslashreplace")
                undecodable.append(CsvRecord(number, raw, None, f"invalid UTF-8 at byte {exc.start}"))
                continue
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text

    feed = _LineFeed(decoded())
    reader = csv.reader(feed)
    header: list[str] | None = None
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line, raw = feed.take()
            yield CsvRecord(line, raw, None, f"unreadable CSV: {exc}")
            continue
        finally:
            yield from undecodable
            undecodable.clear()
        line, raw = feed.take()
        if not fields or fields == [""]:
            continue
        if header is None:
            header = [name.strip().lower() for name in fields]
            continue
        if len(fields) != len(header):
            yield CsvRecord(line, raw, None, f"expected {len(header)} fields, found {len(fields)}")
            continue
        yield CsvRecord(line, raw, dict(zip(header, fields, strict=True)))
