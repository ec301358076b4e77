"""How every source lands a record: shared by the sources so raw tables look alike.

A raw table keeps each distinct (natural key, version) once: its primary key is the natural key plus
`_version` (the version column as landed, '' when missing), so a re-delivery of the same version
replaces it and a new version adds a row. Every contract field lands as text, exactly as it arrived;
dbt types it and quarantines what breaks a rule. Extra columns, all prefixed with `_`:

- `_version_at`: the version column parsed here, once (NULL when missing or unparseable); dbt's
  "latest" ordering uses it.
- `_cursor_at` (sources read through a cursor): `_version_at`, or NULL when it lies beyond the
  extraction's start plus a tolerance. The incremental cursor is on this column, so one version stamped
  in the future lands like any other but cannot move the cursor past the versions still to come.
- `_delivered_at`, `_delivery_seq`: when and in what order the record was delivered, the contract's
  tie-breaker ("delivered last"). Within one load package dlt keeps, of the rows with the same
  (key, `_version`), the one with the greatest `_delivery_seq`.
- `_record`: the whole record as JSON text, unknown extra fields included.

A record that cannot be landed (no natural key, not an object, not parseable, or holding text no
warehouse column can store: a NUL character, a lone UTF-16 surrogate, anywhere in it) becomes a row of
the source's `dead_letters` table, in the same load package as the rows around it, so the cursor state
never advances past a record that was neither landed nor dead-lettered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from loaders.core.registry import DEAD_LETTERS_TABLE
from loaders.core.timestamps import parse_timestamp
from loaders.landing.columnar import parse_timestamps, record_json, record_path_mask
from loaders.landing.records import MAX_KEY_BYTES, FieldKind, SourceRecord, field_kinds, to_json

TIMESTAMP = pa.timestamp("us", tz="UTC")
CURSOR_COLUMN = "_cursor_at"

Progress = Callable[[str, int], None]
"""Told `(source.resource, records)` as a source hands records to dlt (a progress display)."""


@dataclass
class Tally:
    """What one extraction of a source counted, filled in as it runs: the records it handed to dlt (landed
    rows and dead letters: the first column of the run's books) and the requests it retried. The pipeline
    hands one to the source function and reads it back; no module global carries the counts."""

    handed_over: int = 0
    retries: int = 0
    progress: Progress | None = None
    # The source's tables the warehouse already has (dlt's schema names them once a load created them):
    # `Batch.finish` declares only the others with a zero-row table, so a run with nothing new hands dlt
    # nothing to load.
    known_tables: frozenset[str] = frozenset()

    def extracted(self, table: str, records: int) -> None:
        if self.progress is not None:
            self.progress(table, records)

    def count_retry(self) -> None:
        self.retries += 1


DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("dead_letter_id", pa.string()),
        ("source", pa.string()),
        ("resource", pa.string()),
        ("location", pa.string()),
        ("raw_text", pa.string()),
        ("error", pa.string()),
        ("dead_lettered_at", TIMESTAMP),
        ("_delivered_at", TIMESTAMP),
    ]
)


def raw_table_hints(key: str) -> dict[str, Any]:
    """dlt resource hints shared by every raw table: merge on (key, version), latest delivery wins.

    Rows of one package that share (key, version) are told apart by `_delivery_seq`, which orders
    every record of a delivery (`_delivered_at` is the same for a whole API or database extract, and
    for settlement files with equal modification times). `_delivered_at` once carried the hint: it is
    cleared so a schema stored by an earlier version of this loader does not keep it.
    """
    return {
        "primary_key": (key, "_version"),
        "write_disposition": "merge",
        "columns": {"_delivery_seq": {"dedup_sort": "desc"}, "_delivered_at": {"dedup_sort": None}},
    }


def cursor_value(version_at: datetime | None, horizon: datetime) -> datetime | None:
    """The version as a cursor value: None when it lies beyond `horizon`, so the cursor ignores it."""
    if version_at is None or version_at > horizon:
        return None
    return version_at


def dead_letter_hints() -> Any:
    return dlt.mark.make_hints(table_name=DEAD_LETTERS_TABLE, primary_key="dead_letter_id", write_disposition="merge")


def version_cursor(lag_seconds: float) -> Any:
    """The incremental cursor on `_cursor_at`, lagged so versions that arrive late are re-read.

    A lag turns off dlt's own boundary de-duplication; the merge on (key, `_version`) makes the
    re-read versions replace themselves instead. A NULL `_cursor_at` (no parseable version, a version
    in the future, a dead letter) is let through ("include") and does not move the cursor.
    """
    return dlt.sources.incremental(
        CURSOR_COLUMN,
        lag=lag_seconds,
        on_cursor_value_missing="include",
        primary_key=(),
    )


@dataclass(frozen=True)
class Window:
    """A bounded window of version times, `[start, end)` (UTC, end excluded), for a backfill.

    A source read through a window lands the versions whose version time falls in it and nothing else
    (a version that does not parse has no place in a window, nor has an API or database record that
    cannot land; a settlement row in the window that cannot land is dead-lettered again, onto itself),
    keeps no cursor state and takes no file into a manifest, so the source's own cursor never moves.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None or self.end <= self.start:
            raise ValueError(f"a window needs UTC bounds with start < end, got [{self.start}, {self.end})")

    def holds(self, version_at: datetime | None) -> bool:
        return version_at is not None and self.start <= version_at < self.end

    def holds_each(self, versions_at: pa.Array) -> pa.Array:
        """`holds` of every version time of an Arrow array (False where there is none)."""
        inside = pc.and_(pc.greater_equal(versions_at, self.start), pc.less(versions_at, self.end))
        return pc.fill_null(inside, False)

    def cursor(self) -> Any:
        """dlt's incremental bounded by the window: with an `end_value` dlt keeps no state for it, and a
        row without a cursor value (a dead letter, a version that does not parse or lies in the future)
        is left out."""
        return dlt.sources.incremental(
            CURSOR_COLUMN,
            initial_value=self.start,
            end_value=self.end,
            on_cursor_value_missing="exclude",
            primary_key=(),
        )


def source_cursor(lag_seconds: float, window: Window | None) -> Any:
    """A source's incremental: its lagged cursor, or the window's when it is read for a backfill."""
    return version_cursor(lag_seconds) if window is None else window.cursor()


def as_window(start: datetime | None, end: datetime | None) -> Window | None:
    """A source's `start`/`end` arguments as a window (None: the source's own cursor)."""
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise ValueError("a backfill window needs both start and end")
    return Window(start, end)


class TakenWithoutVersion:
    """The records without a version (no parseable version column, or not even an object) a source has
    already taken, remembered in the resource state by a digest of their text, so that a source serving
    them on every read (the API serves them whatever `updated_since` says; the database query reads the
    rows whose `updated_at` is NULL every time) costs a lookup instead of a landing or a dead letter per
    run: per-run work that would otherwise grow with the history. A record changed in any way has another
    digest and is taken. The state commits with the package that carries the record, so a crash forgets
    nothing that was not landed. 64-bit digests: a collision among a million of them is ~3e-8 likely."""

    STATE_KEY = "taken_without_version"

    def __init__(self, state: dict[str, Any], version: str = "updated_at") -> None:
        self._digests: list[str] = state.setdefault(self.STATE_KEY, [])
        self._known = set(self._digests)
        self.version = version

    def is_new(self, record: Any) -> bool:
        """False for a record without a version that was taken before, unchanged."""
        if isinstance(record, dict) and parse_timestamp(record.get(self.version)) is not None:
            return True
        digest = hashlib.sha256(raw_json(record).encode(errors="surrogatepass")).hexdigest()[:16]
        if digest in self._known:
            return False
        self._known.add(digest)
        self._digests.append(digest)
        return True


BATCH_ROWS = 25_000
"""Rows a source table accumulates before they are handed to dlt as one Arrow table: dlt's work per table
(schema, hints, incremental, a Parquet file) then runs every 25,000 rows instead of every page or file,
and a loader's memory stays bounded by this many rows whatever the size of the extraction."""

TEXT_TYPES = {str, type(None)}
# A key no longer than this many characters is at most MAX_KEY_BYTES in UTF-8: no need to encode it.
SHORT_KEY_CHARS = MAX_KEY_BYTES // 4


class SubclassedName(str):
    """A field name of a str subclass, as SQLAlchemy's rows name their columns: orjson refuses it, so
    `to_json` writes such a record with the standard library, spaced (see `Batch.add_table`)."""


@dataclass
class Batch:
    """Accumulates one source table's landed rows and dead letters, then hands them to dlt as Arrow.

    Each record is checked against the source's model (`loaders/sources/<name>/records.py`). The common record, whose
    fields are all text or missing and whose key is plain, is taken as it is, field by field, without
    building a pydantic object; any other record goes through the model, which converts what it can and
    says why it cannot. Both paths give the same row (tests/loaders/test_landing.py checks it)."""

    source: str
    resource: str
    model: type[SourceRecord]
    key: str
    version: str = "updated_at"
    extra_columns: dict[str, pa.DataType] = field(default_factory=dict)
    # What makes two dead letters the same one. A file's record is its place in the file; an API or
    # database record is re-served at another position on every re-read, so only its text names it.
    dead_letter_identity: Literal["raw_text", "location"] = "raw_text"
    # Sources read through `version_cursor`: the latest version time the cursor may take (the
    # extraction's start plus the source's tolerance). Both tables then carry `_cursor_at`, since
    # dlt's Arrow incremental needs its cursor column in every table a resource yields.
    cursor_horizon: datetime | None = None
    batch_rows: int = BATCH_ROWS
    tally: Tally = field(default_factory=Tally)
    _rows: list[tuple[Any, ...]] = field(default_factory=list)
    _tables: list[pa.Table] = field(default_factory=list)
    _dead: list[dict[str, Any]] = field(default_factory=list)
    _reported: int = 0
    _landed_any: bool = False
    _dead_any: bool = False

    def __post_init__(self) -> None:
        self.kinds = field_kinds(self.model)
        self.fields = tuple(name for name, _ in self.kinds)
        self.columns = (
            [(name, pa.string()) for name in self.fields]
            + [("_version", pa.string()), ("_version_at", TIMESTAMP)]
            + self._cursor_fields()
            + [("_delivered_at", TIMESTAMP), ("_delivery_seq", pa.int64()), ("_record", pa.string())]
            + list(self.extra_columns.items())
        )
        self._version_index = self.fields.index(self.version)
        positions = {kind: [i for i, (_, k) in enumerate(self.kinds) if k is kind] for kind in FieldKind}
        (self._key_index,) = positions[FieldKind.KEY]
        self._reference_fields = positions[FieldKind.REFERENCE]
        self._json_fields = positions[FieldKind.JSON]

    @property
    def pending_rows(self) -> list[dict[str, Any]]:
        """The rows landed so far and not yet handed to dlt: those of `add`, then those of `add_table`."""
        names = [name for name, _ in self.columns]
        rows = [dict(zip(names, row, strict=True)) for row in self._rows]
        return rows + [row for table in self._tables for row in table.to_pylist()]

    @property
    def pending_dead_letters(self) -> list[dict[str, Any]]:
        return self._dead

    def add(
        self,
        record: Any,
        raw_text: str | None,
        location: str,
        delivered_at: datetime,
        delivery_seq: int,
        **extra: Any,
    ) -> bool:
        """Land the record if it is landable, else dead-letter it. Returns whether it landed.

        `raw_text` is the record as delivered (a settlement file's line); None when the record arrived
        as JSON (the API's, the database's), whose raw text is then the record's own JSON."""
        if not isinstance(record, dict):
            return self._refuse(record, raw_text, location, f"not a JSON object: {type(record).__name__}", delivered_at)
        values = self._plain_values(record)
        if values is None:
            try:
                parsed = self.model.model_validate(record)
            except ValidationError as exc:
                return self._refuse(record, raw_text, location, describe(exc), delivered_at)
            values = [_column_text(getattr(parsed, name)) for name in self.fields]
        record_json = to_json(record)
        if not plainly_storable(raw_text if raw_text is not None else record_json):
            unstorable = unstorable_text(record)
            if unstorable is not None:
                return self._refuse(record, raw_text, location, unstorable, delivered_at)
        version = values[self._version_index]
        version_at = parse_timestamp(version)
        values.append(version or "")
        values.append(version_at)
        if self.cursor_horizon is not None:
            values.append(cursor_value(version_at, self.cursor_horizon))
        values += (delivered_at, delivery_seq, record_json)
        if self.extra_columns:
            values += [extra.get(name) for name in self.extra_columns]
        self._rows.append(tuple(values))
        return True

    def add_table(
        self,
        table: pa.Table,
        locations: pa.Array,
        delivered_at: datetime,
        delivery_seqs: pa.Array,
        raw_texts: pa.Array | None = None,
        control_characters: pa.Array | None = None,
        window: Window | None = None,
        spaced_json: bool = False,
        **extra: Any,
    ) -> None:
        """`add` for every row of a table of text columns (the record's fields by name, unknown ones too, in
        the record's order), with Arrow's kernels (loaders/landing/columnar.py); the rows they cannot judge go
        through `add` one by one. `locations`, `delivery_seqs` and `raw_texts` (None: the record arrived as
        its columns, its raw text is its JSON) are one per row; `control_characters`, when given, says which
        rows' raw text holds one; each `extra` column is one value for every row. With `window`, only the rows
        whose version it holds are taken (a backfill)."""
        if self._json_fields:
            raise ValueError(f"{self.source}.{self.resource}: a model with JSON fields lands record by record")
        if table.num_rows == 0:
            return
        missing = pa.nulls(table.num_rows, pa.string())
        versions = table.column(self.version) if self.version in table.column_names else missing
        versions_at = parse_timestamps(versions)
        if window is not None:
            table, locations, delivery_seqs, versions_at, raw_texts, control_characters = only(
                window.holds_each(versions_at),
                table,
                locations,
                delivery_seqs,
                versions_at,
                raw_texts,
                control_characters,
            )
        references = [self.fields[index] for index in self._reference_fields]
        by_record = record_path_mask(table, self.key, references, SHORT_KEY_CHARS, control_characters)
        if pc.any(by_record).as_py():
            self._add_each(
                table.filter(by_record),
                locations.filter(by_record),
                delivered_at,
                delivery_seqs.filter(by_record),
                None if raw_texts is None else raw_texts.filter(by_record),
                spaced_json,
                **extra,
            )
            table, locations, delivery_seqs, versions_at = only(
                pc.invert(by_record), table, locations, delivery_seqs, versions_at
            )
        self._land_plain(table, delivered_at, delivery_seqs, versions_at, record_json(table, spaced_json), extra)

    def add_records(
        self,
        records: list[Any],
        locations: pa.Array,
        delivered_at: datetime,
        delivery_seqs: pa.Array,
        taken: TakenWithoutVersion | None = None,
    ) -> None:
        """`add` for a page of records that arrived as JSON, each record's `_record` and JSON fields written by
        orjson as `add` writes them and everything else by Arrow's kernels, as `add_table` does; the records
        they cannot judge (not an object, a field that is not text, text no column stores, a key that is not
        plain) go through `add`. With `taken`, a record without a version is taken only once
        (`TakenWithoutVersion`)."""
        if not records:
            return
        jsons = [to_json(record) for record in records]
        objects = [type(r) is dict and plainly_storable(j) for r, j in zip(records, jsons, strict=True)]
        plain = np.array(objects)
        rows = records if all(objects) else [r if p else {} for r, p in zip(records, objects, strict=True)]
        texts = {name: [row.get(name) for row in rows] for name in self.fields}
        for name, kind in self.kinds:
            values = texts[name]
            if kind is FieldKind.JSON:
                texts[name] = [None if value is None else to_json(value, sort_keys=True) for value in values]
            elif not set(map(type, values)) <= TEXT_TYPES:
                plain &= np.array([type(value) in TEXT_TYPES for value in values])
                texts[name] = [value if type(value) in TEXT_TYPES else None for value in values]
        table = pa.table({name: pa.array(values, pa.string()) for name, values in texts.items()})
        versions_at = parse_timestamps(table.column(self.version))
        one_by_one = ~plain
        without_version = np.flatnonzero(pc.is_null(versions_at).to_numpy(zero_copy_only=False))
        keep = np.ones(len(records), dtype=bool)
        if taken is not None:
            keep[without_version] = [taken.is_new(records[i]) for i in without_version]
        references = [self.fields[index] for index in self._reference_fields]
        control_free = pa.repeat(pa.scalar(False), len(records))  # orjson escaped them in the JSON
        one_by_one |= record_path_mask(table, self.key, references, SHORT_KEY_CHARS, control_free).to_numpy(
            zero_copy_only=False
        )
        seqs, places = delivery_seqs.to_pylist(), locations.to_pylist()
        for i in np.flatnonzero(keep & one_by_one):
            self.add(records[i], None, places[i], delivered_at, seqs[i])
        columnar = keep & ~one_by_one
        taken_jsons = pa.array([text for text, take in zip(jsons, columnar, strict=True) if take], pa.string())
        columnar = pa.array(columnar)
        self._land_plain(
            table.filter(columnar),
            delivered_at,
            delivery_seqs.filter(columnar),
            versions_at.filter(columnar),
            taken_jsons,
            {},
        )

    def _land_plain(
        self,
        table: pa.Table,
        delivered_at: datetime,
        delivery_seqs: pa.Array,
        versions_at: pa.Array,
        record_jsons: pa.Array,
        extra: dict[str, Any],
    ) -> None:
        """The landed rows of records every kernel has judged plain: their fields as text, the version, the
        cursor, the delivery, the JSON and each extra column's one value."""
        rows = table.num_rows
        if rows == 0:
            return
        columns: list[Any] = [
            table.column(name).cast(pa.string()) if name in table.column_names else pa.nulls(rows, pa.string())
            for name in self.fields
        ]
        columns += [pc.fill_null(columns[self._version_index], ""), versions_at]
        if self.cursor_horizon is not None:
            columns.append(pc.if_else(pc.greater(versions_at, self.cursor_horizon), None, versions_at))
        columns += [pa.repeat(pa.scalar(delivered_at, TIMESTAMP), rows), delivery_seqs.cast(pa.int64()), record_jsons]
        columns += [pa.repeat(pa.scalar(extra.get(name), type), rows) for name, type in self.extra_columns.items()]
        self._tables.append(pa.Table.from_arrays(columns, schema=pa.schema(self.columns)))

    def _add_each(
        self,
        table: pa.Table,
        locations: pa.Array,
        delivered_at: datetime,
        delivery_seqs: pa.Array,
        raw_texts: pa.Array | None,
        spaced_json: bool,
        **extra: Any,
    ) -> None:
        raws = [None] * table.num_rows if raw_texts is None else raw_texts.to_pylist()
        names = [SubclassedName(name) for name in table.column_names] if spaced_json else table.column_names
        rows = zip(*(column.to_pylist() for column in table.columns), strict=True) if names else [()] * table.num_rows
        for values, location, seq, raw in zip(
            rows, locations.to_pylist(), delivery_seqs.to_pylist(), raws, strict=True
        ):
            self.add(dict(zip(names, values, strict=True)), raw, location, delivered_at, seq, **extra)

    def _refuse(self, record: Any, raw_text: str | None, location: str, error: str, delivered_at: datetime) -> bool:
        """Dead-letter a record `add` cannot land, under its raw text (its JSON when it arrived as JSON)."""
        self.dead_letter(raw_json(record) if raw_text is None else raw_text, location, error, delivered_at)
        return False

    def _plain_values(self, record: dict[str, Any]) -> list[Any] | None:
        """The fields of a record that needs no conversion (every field text or missing, the key plain
        text, references short), as landed; None when the model must judge it."""
        values = list(map(record.get, self.fields))
        for index in self._json_fields:
            if values[index] is not None:
                values[index] = to_json(values[index], sort_keys=True)
        if not set(map(type, values)) <= TEXT_TYPES:
            return None
        key = values[self._key_index]
        if not key or len(key) > SHORT_KEY_CHARS or key != key.strip():
            return None
        for index in self._reference_fields:
            if values[index] is not None and len(values[index]) > SHORT_KEY_CHARS:
                return None
        return values

    def dead_letter(self, raw_text: str, location: str, error: str, delivered_at: datetime) -> None:
        identity = raw_text if self.dead_letter_identity == "raw_text" else f"{location}\x00{raw_text}"
        digest = hashlib.sha256(f"{self.source}\x00{self.resource}\x00{identity}".encode(errors="surrogatepass"))
        self._dead.append(
            {
                "dead_letter_id": digest.hexdigest()[:32],
                "source": self.source,
                "resource": self.resource,
                "location": storable(location),
                "raw_text": storable(raw_text),
                "error": storable(error),
                "dead_lettered_at": datetime.now(UTC),
                "_delivered_at": delivered_at,
                CURSOR_COLUMN: None,
            }
        )

    @property
    def pending(self) -> int:
        return len(self._rows) + sum(table.num_rows for table in self._tables) + len(self._dead)

    def flush(self) -> Iterator[Any]:
        """Hand the pending rows to dlt once there are `batch_rows` of them (see BATCH_ROWS)."""
        self._report_progress()
        if self.pending >= self.batch_rows:
            yield from self.drain()

    def drain(self) -> Iterator[Any]:
        """Yield the landed rows as one Arrow table and the dead letters as another, then reset."""
        self._report_progress()
        self.tally.handed_over += self.pending
        if self._rows or self._tables:
            yield self._landed_table()
            self._landed_any = True
        if self._dead:
            yield self._dead_letter_table()
            self._dead_any = True
        self._rows, self._tables, self._dead, self._reported = [], [], [], 0

    def finish(self) -> Iterator[Any]:
        """Drain, then yield a zero-row table for each table that got no row and that the warehouse does not
        have yet, so both tables exist before their first record arrives. Last, not first: dlt's Arrow
        incremental with a lag mishandles an empty table yielded before the first rows."""
        yield from self.drain()
        if not self._landed_any and self.resource not in self.tally.known_tables:
            yield self._landed_table()
        if not self._dead_any and DEAD_LETTERS_TABLE not in self.tally.known_tables:
            yield self._dead_letter_table()

    def _report_progress(self) -> None:
        if self.pending > self._reported:
            self.tally.extracted(f"{self.source}.{self.resource}", self.pending - self._reported)
            self._reported = self.pending

    def _cursor_fields(self) -> list[tuple[str, pa.DataType]]:
        return [] if self.cursor_horizon is None else [(CURSOR_COLUMN, TIMESTAMP)]

    def _dead_letter_table(self) -> Any:
        schema = pa.schema(list(DEAD_LETTER_SCHEMA) + self._cursor_fields())
        table = pa.Table.from_pylist(self._dead, schema=schema)
        return dlt.mark.with_hints(table, dead_letter_hints(), create_table_variant=True)

    def _landed_table(self) -> pa.Table:
        schema = pa.schema(self.columns)
        columns = list(zip(*self._rows, strict=True)) if self._rows else [()] * len(self.columns)
        rows = pa.Table.from_arrays(
            [pa.array(values, type=column.type) for values, column in zip(columns, schema, strict=True)],
            schema=schema,
        )
        if not self._tables:
            return rows
        return pa.concat_tables([rows, *self._tables]).combine_chunks()


def only(mask: pa.Array, *columns: Any) -> tuple[Any, ...]:
    """Each of the row-aligned tables and arrays (None stays None) kept to the rows `mask` holds."""
    return tuple(None if column is None else column.filter(mask) for column in columns)


def raw_json(record: Any) -> str:
    """The raw text of a record that arrived as JSON, for its dead letter: the same text, and so the same
    dead letter id, as every earlier version of the loaders wrote (orjson's would differ in spacing)."""
    return json.dumps(record, default=str, ensure_ascii=False)


def plainly_storable(raw_text: str) -> bool:
    """Whether the record's raw text — which holds every text of the record: its JSON (NUL written as
    `\\u0000`, a lone surrogate as itself) or its CSV line — has no NUL and encodes as UTF-8, so that no
    field of the record can hold unstorable text. One scan instead of a walk of every field; when it says
    no, `unstorable_text` finds where."""
    if "\x00" in raw_text or "\\u0000" in raw_text:
        return False
    try:
        raw_text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_text(value: Any, where: str = "record") -> str | None:
    """Where the record holds text that no warehouse column can store, or None.

    PostgreSQL's text and jsonb refuse the NUL character (and `\\u0000` in JSON), and nothing encodes a
    lone UTF-16 surrogate (`\\ud800` decoded from JSON) as UTF-8. Field names are text too.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where}: a NUL character, which the warehouse cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"{where}: a lone surrogate at character {exc.start}, which is not Unicode text"
        return None
    if isinstance(value, dict):
        for name, member in value.items():
            label = name if isinstance(name, str) and len(name) <= 64 else "a field"
            found = unstorable_text(name, f"{where} field name") or unstorable_text(member, f"{where}.{label}")
            if found is not None:
                return storable(found)
    elif isinstance(value, (list, tuple)):
        for position, member in enumerate(value):
            found = unstorable_text(member, f"{where}[{position}]")
            if found is not None:
                return found
    return None


def storable(text: str) -> str:
    """Text a warehouse can store, for dead letters: NUL and lone surrogates written as escapes."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text


def _column_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return to_json(value)


def describe(exc: ValidationError) -> str:
    """A validation error as one line, naming fields but never echoing values (they may be secret)."""
    parts = [f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}" for err in exc.errors()]
    return "; ".join(parts)
