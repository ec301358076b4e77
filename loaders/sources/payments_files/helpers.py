"""Reading settlement CSVs: whole files through Arrow's CSV reader (`read_csv_table`), or record by record
(`read_csv_records`) where only Python's csv module reads them as CSV allows.

A damaged row (wrong field count, undecodable bytes, a csv error) becomes a dead letter and the rows
around it go on; BOMs, CRLF line ends and quoted fields with embedded newlines are read as CSV allows.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

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


COLUMNS_AT_ONCE_MAX_BYTES = 64 * 1024 * 1024
"""A file up to this size is read whole by Arrow's CSV reader; a larger one, line by line."""


@dataclass(frozen=True)
class CsvTable:
    """A settlement file read by Arrow's CSV reader: its well-formed rows as text columns, and its damaged
    lines as `CsvRecord`s without fields."""

    table: pa.Table
    lines: pa.Array  # each row's line number (int64)
    raw_texts: pa.Array  # each row's line as delivered, line end included
    control_characters: pa.Array  # whether a row's line holds a control character (a tab, a NUL)
    damaged: list[CsvRecord]
    last_line: int  # the last line that held a record (0: none)


def read_csv_table(data: bytes) -> CsvTable | None:
    """A whole file through Arrow's CSV reader, with its line numbers, or None when only `read_csv_records`
    reads it as CSV allows: a quote anywhere (a quoted field may span lines), a carriage return that does not
    end a line, bytes that are not UTF-8, no header on the first line, a repeated column name, or a file
    over COLUMNS_AT_ONCE_MAX_BYTES.

    Without quotes, every line is one record and its commas count its fields, so the line numbers come from
    the bytes (NumPy) and a damaged line is known before Arrow's invalid-row handler reports it; both must
    agree, or the file is read line by line. Both readers give the same records (tests/loaders/
    test_payments_csv.py compares them on generated files)."""
    if not data or len(data) > COLUMNS_AT_ONCE_MAX_BYTES or b'"' in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    body = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(body == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    stops = np.concatenate((newlines + 1, [len(data)]))
    if starts[-1] == len(data):  # the last line ended with its line end
        starts, stops = starts[:-1], stops[:-1]
    ends = stops - (body[stops - 1] == ord("\n"))  # the line's text without "\n" ...
    ends = ends - ((ends > starts) & (body[np.maximum(ends - 1, 0)] == ord("\r")))  # ... nor "\r\n"
    text_starts = starts.copy()
    if data.startswith(codecs.BOM_UTF8):
        text_starts[0] = min(3, ends[0])
    commas = np.concatenate(([0], np.cumsum(body == ord(","))))
    fields = commas[ends] - commas[text_starts] + 1
    filled = ends > text_starts
    if not filled[0]:
        return None
    header = [name.strip().lower() for name in data[text_starts[0] : ends[0]].decode().split(",")]
    if len(set(header)) != len(header):
        return None
    controls = np.concatenate(([0], np.cumsum((body < 32) & (body != ord("\n")) & (body != ord("\r")))))
    is_row = filled & (fields == len(header))
    is_row[0] = False
    is_damaged = filled & ~is_row
    is_damaged[0] = False
    row_lines, damaged_lines = np.flatnonzero(is_row), np.flatnonzero(is_damaged)
    if not len(row_lines) and not len(damaged_lines):  # a header alone: Arrow's reader calls it empty
        empty = pa.table({name: pa.array([], pa.string()) for name in header})
        nothing = pa.array([], pa.int64())
        return CsvTable(empty, nothing, pa.array([], pa.string()), pa.array([], pa.bool_()), [], 0)
    reported: list[str] = []

    def damaged_row(row: pa_csv.InvalidRow) -> str:
        reported.append(row.text)
        return "skip"

    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1, use_threads=False),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=damaged_row),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid:
        return None
    texts = [data[text_starts[i] : ends[i]].decode() for i in damaged_lines]
    if table.num_rows != len(row_lines) or reported != texts:
        return None
    offsets = pa.py_buffer(np.concatenate((starts, [stops[-1]])).astype(np.int32))
    lines_text = pa.StringArray.from_buffers(len(starts), offsets, pa.py_buffer(data))
    damaged = [
        CsvRecord(
            int(i) + 1,
            data[starts[i] : stops[i]].decode(),
            None,
            f"expected {len(header)} fields, found {int(fields[i])}",
        )
        for i in damaged_lines
    ]
    taken = np.flatnonzero(is_row | is_damaged)
    return CsvTable(
        table=table,
        lines=pa.array(row_lines + 1, pa.int64()),
        raw_texts=lines_text.take(pa.array(row_lines)),
        control_characters=pa.array(controls[stops[row_lines]] - controls[starts[row_lines]] > 0),
        damaged=damaged,
        last_line=int(taken[-1]) + 1 if len(taken) else 0,
    )
