"""`app_db`: customers and products from the shop's OLTP database (contract 1.2), any SQLAlchemy URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import sqlalchemy as sa

from loaders.records import Customer, Product, SourceRecord
from loaders.sources.app_db.settings import CHUNK_SIZE, COMMIT_LAG_SECONDS, FUTURE_VERSION_TOLERANCE_SECONDS
from loaders.sources.landing import Batch, raw_table_hints, version_cursor

SOURCE = "app_db"
TABLES: dict[str, tuple[type[SourceRecord], str]] = {
    "customers": (Customer, "id"),
    "products": (Product, "sku"),
}


@dlt.source(name=SOURCE)
def app_db(credentials: str = dlt.secrets.value, schema: str | None = None, chunk_size: int = CHUNK_SIZE) -> Any:
    """`schema`: where the tables live when the database has schemas (PostgreSQL); default search path."""
    engine = sa.create_engine(credentials)
    return [table_resource(engine, schema, name, model, key, chunk_size) for name, (model, key) in TABLES.items()]


def table_resource(
    engine: sa.Engine, schema: str | None, name: str, model: type[SourceRecord], key: str, chunk_size: int
) -> Any:
    @dlt.resource(name=name, **raw_table_hints(key))
    def rows(updated=version_cursor(COMMIT_LAG_SECONDS)) -> Iterator[Any]:
        delivered_at = datetime.now(UTC)
        horizon = delivered_at + timedelta(seconds=FUTURE_VERSION_TOLERANCE_SECONDS)
        batch = Batch(SOURCE, name, model, key=key, cursor_horizon=horizon)
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                changed_rows_query(engine, schema, name, key, updated.start_value)
            )
            seq = 0
            for chunk in result.mappings().partitions(chunk_size):
                for row in chunk:
                    seq += 1
                    record = dict(row)
                    batch.add(record, json.dumps(record, default=str), f"{name} row {seq}", delivered_at, seq)
                yield from batch.drain()
        yield from batch.finish()

    return rows


def changed_rows_query(engine: sa.Engine, schema: str | None, name: str, key: str, since: datetime | None) -> sa.Select:
    """Every column as text (the value as stored, bad ones included), rows changed since the cursor.

    Rows whose `updated_at` is NULL are always read: they cannot be placed on the cursor, and
    re-reading them merges onto themselves.
    """
    table = sa.Table(name, sa.MetaData(schema=schema), autoload_with=engine)
    query = sa.select(*(sa.cast(column, sa.String).label(column.name) for column in table.columns))
    if since is not None:
        # The column is a UTC `TIMESTAMP` without zone: compare with a naive UTC value.
        naive = since.astimezone(UTC).replace(tzinfo=None)
        query = query.where(sa.or_(table.c.updated_at >= naive, table.c.updated_at.is_(None)))
    return query.order_by(table.c.updated_at, table.c[key])
