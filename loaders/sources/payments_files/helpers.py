"""Reading settlement CSVs record by record.

A damaged row (wrong field count, undecodable bytes, a csv error) becomes a dead letter and the rows
around it go on; BOMs, CRLF line ends and quoted fields with embedded newlines are read as CSV allows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# A legitimate field may be large (free-text notes); csv's 128 KiB default would dead-letter it.
csv.field_size_limit(64 * 1024 * 1024)


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
