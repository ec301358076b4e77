"""`app_db`: customers and products from the shop's OLTP database (contract 1.2), any SQLAlchemy URL.

The database is reached and both tables are found before anything is extracted: an unreachable
database (a bad URL, a server down, a SQLite file that does not exist) fails the source with one line
naming the setting to check, and no cursor moves. A SQLite URL is never allowed to create an empty
database file where the real one was expected. The URL's password is never printed.

Every column of a table is read, as text (the contract's and any column the source added since), so a
new column lands in `_record`. SQLite stores anything in any column: a blob that is not UTF-8 text
makes its row a dead letter (its bytes escaped in the raw text), never a failed run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from loaders.landing.batch import (
    Batch,
    TakenWithoutVersion,
    Tally,
    Window,
    as_window,
    raw_json,
    raw_table_hints,
    source_cursor,
)
from loaders.landing.columnar import parse_timestamps
from loaders.landing.records import SourceRecord
from loaders.sources.app_db.records import Customer, Product
from loaders.sources.app_db.settings import CHUNK_SIZE, COMMIT_LAG_SECONDS, FUTURE_VERSION_TOLERANCE_SECONDS

SOURCE = "app_db"
TABLES: dict[str, tuple[type[SourceRecord], str]] = {
    "customers": (Customer, "id"),
    "products": (Product, "sku"),
}
CHECK = "check SOURCES__APP_DB__CREDENTIALS"


class AppDbError(RuntimeError):
    """The app database cannot be read: the message says why and what to check, never the password."""


class UndecodableText(str):
    """A SQLite text or blob value that is not UTF-8, kept with its bad bytes escaped (`\\xff`)."""

    error: str = ""


def decode_sqlite_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = UndecodableText(data.decode("utf-8", errors="backslashreplace"))
        text.error = f"invalid UTF-8 at byte {exc.start}"
        return text


@dlt.source(name=SOURCE)
def app_db(
    credentials: str = dlt.secrets.value,
    schema: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    start: datetime | None = None,
    end: datetime | None = None,
    tally: Tally | None = None,
) -> Any:
    """`schema`: where the tables live when the database has schemas (PostgreSQL); default search path.
    `start`/`end` (`elt backfill`): read only the rows updated in `[start, end)`, with no cursor state.
    `tally` counts what the extraction hands to dlt."""
    window = as_window(start, end)
    tally = tally or Tally()
    engine = connect(credentials)
    tables = reflect_tables(engine, schema)
    return [
        table_resource(engine, tables[name], model, key, chunk_size, window, tally)
        for name, (model, key) in TABLES.items()
    ]


def connect(credentials: str) -> sa.Engine:
    """An engine for the URL; a SQLite file must exist (SQLite would otherwise create an empty one)."""
    try:
        url = sa.engine.make_url(credentials)
    except Exception:  # the message would repeat the URL, password included
        raise AppDbError(f"app_db: the database URL cannot be parsed as a SQLAlchemy URL ({CHECK})") from None
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            pass  # an in-memory or URI-form database: nothing to check on disk
        elif not Path(database).is_file():
            raise AppDbError(f"app_db: the SQLite database file {database} does not exist ({CHECK})")
    try:
        engine = sa.create_engine(url)
    except Exception as exc:
        raise AppDbError(f"app_db: cannot use {shown}: {_first_line(exc)} ({CHECK})") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_text_factory)
    return engine


def _sqlite_text_factory(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.text_factory = decode_sqlite_text


def reflect_tables(engine: sa.Engine, schema: str | None) -> dict[str, sa.Table]:
    """Reach the database and find the contract's tables, or fail clearly before any extraction."""
    shown = engine.url.render_as_string(hide_password=True)
    metadata = sa.MetaData(schema=schema)
    tables = {}
    try:
        with engine.connect() as conn:
            for name in TABLES:
                tables[name] = sa.Table(name, metadata, autoload_with=conn)
    except sa.exc.NoSuchTableError as exc:
        where = f"schema {schema}" if schema else "the default schema"
        raise AppDbError(
            f"app_db: no table {exc} in {where} of {shown} ({CHECK} and SOURCES__APP_DB__SCHEMA)"
        ) from None
    except Exception as exc:
        raise AppDbError(f"app_db: cannot reach {shown}: {_first_line(exc)} ({CHECK})") from None
    return tables


def _first_line(exc: BaseException) -> str:
    """The driver's own reason (a DBAPI error's message, never the URL), on one line."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def table_resource(
    engine: sa.Engine,
    table: sa.Table,
    model: type[SourceRecord],
    key: str,
    chunk_size: int,
    window: Window | None = None,
    tally: Tally | None = None,
) -> Any:
    name = table.name
    cursor = source_cursor(COMMIT_LAG_SECONDS, window)

    @dlt.resource(name=name, **raw_table_hints(key))
    def rows(updated=cursor) -> Iterator[Any]:
        delivered_at = datetime.now(UTC)
        horizon = delivered_at + timedelta(seconds=FUTURE_VERSION_TOLERANCE_SECONDS)
        batch = Batch(SOURCE, name, model, key=key, cursor_horizon=horizon, tally=tally or Tally())
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(
                    changed_rows_query(table, key, updated.start_value, updated.end_value)
                )
                # rows whose updated_at is NULL are read every time: taken once
                taken = TakenWithoutVersion(dlt.current.resource_state()) if window is None else None
                columns, seq = list(result.keys()), 0
                for chunk in result.partitions(chunk_size):
                    land_rows(batch, columns, chunk, name, seq, delivered_at, taken)
                    seq += len(chunk)
                    yield from batch.flush()
        except sa.exc.SQLAlchemyError as exc:
            shown = engine.url.render_as_string(hide_password=True)
            raise AppDbError(f"app_db: reading {name} from {shown} failed: {_first_line(exc)} ({CHECK})") from None
        yield from batch.finish()

    return rows


def land_rows(
    batch: Batch,
    columns: list[str],
    chunk: Sequence[Sequence[Any]],
    table: str,
    seq: int,
    delivered_at: datetime,
    taken: TakenWithoutVersion | None,
) -> None:
    """Land a chunk of rows (their `seq` counted from the one before the chunk's first) as Arrow columns
    (`Batch.add_table`), except the rows judged one by one: those holding text that is not UTF-8 (dead
    letters) and, outside a backfill, those without a version (taken once, see `TakenWithoutVersion`)."""
    values = list(zip(*chunk, strict=True)) if chunk else [() for _ in columns]
    undecodable = [any(type(value) is UndecodableText for value in column) for column in values]
    versions = parse_timestamps(pa.array(values[columns.index(batch.version)], pa.string()))
    one_by_one = pc.is_null(versions).to_numpy(zero_copy_only=False)
    if any(undecodable):
        one_by_one |= [any(type(value) is UndecodableText for value in row) for row in chunk]
    for position in np.flatnonzero(one_by_one):
        record = dict(zip(columns, chunk[position], strict=True))
        if taken is None or taken.is_new(record):
            land_row(batch, record, f"{table} row {seq + position + 1}", delivered_at, seq + position + 1)
    rest = ~one_by_one
    if not rest.any():
        return
    texts = pa.table([pa.array(column, pa.string()) for column in values], names=columns).filter(rest)
    seqs = pa.array(np.flatnonzero(rest) + seq + 1, pa.int64())
    locations = pc.binary_join_element_wise(f"{table} row ", seqs.cast(pa.string()), "")
    # SQLAlchemy names the columns with a str subclass: `add` has always written their JSON spaced
    batch.add_table(texts, locations, delivered_at, seqs, spaced_json=True)


def land_row(batch: Batch, record: dict[str, Any], location: str, delivered_at: datetime, seq: int) -> None:
    undecodable = [f"{column}: {value.error}" for column, value in record.items() if isinstance(value, UndecodableText)]
    if undecodable:
        batch.dead_letter(raw_json(record), location, "; ".join(undecodable), delivered_at)
        return
    batch.add(record, None, location, delivered_at, seq)


def changed_rows_query(table: sa.Table, key: str, since: datetime | None, until: datetime | None = None) -> sa.Select:
    """Every column as text (the value as stored, bad ones included), rows changed since the cursor.

    Rows whose `updated_at` is NULL are always read: they cannot be placed on the cursor (the loader
    takes each once, see `landing.TakenWithoutVersion`). With `until` (a backfill's window end, excluded) only rows
    changed before it are read; the window's cursor leaves out the NULL ones.
    """
    query = sa.select(*(sa.cast(column, sa.String).label(column.name) for column in table.columns))
    if since is not None:
        # The column is a UTC `TIMESTAMP` without zone: compare with a naive UTC value.
        naive = since.astimezone(UTC).replace(tzinfo=None)
        query = query.where(sa.or_(table.c.updated_at >= naive, table.c.updated_at.is_(None)))
    if until is not None:
        query = query.where(table.c.updated_at < until.astimezone(UTC).replace(tzinfo=None))
    return query.order_by(table.c.updated_at, table.c[key])
