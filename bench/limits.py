"""The raw limit of each loader's path: the same data, moved by the plainest means the warehouse and
Python offer, with none of the loaders' work (validation, dead letters, versions, merges, state).

- payments files: the warehouse's own CSV reader into a table of text columns — DuckDB `read_csv` of the
  folder, PostgreSQL `COPY ... FROM STDIN (FORMAT csv)` file by file;
- orders API: every page fetched from the same server with the loader's page size and parsed with
  `json.loads`, nothing landed;
- app database: the SQLite tables read (every column as text, as the loader reads them) into Arrow
  batches and inserted into the warehouse — DuckDB from the Arrow batch, PostgreSQL by `COPY` of the
  batch written as CSV by Arrow (no ADBC driver is installed).

Each limit lands in a schema of its own (`bench_limit`), dropped afterwards, through the project's own
connection (`dialect(settings).connect`, which autocommits). Wall and CPU are this
process's (DuckDB's threads included; PostgreSQL's backend is in the server's CPU, not here).
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import requests

from bench.measure import rusage_cpu
from loaders.core.settings import Settings
from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER
from loaders.sources.shop_api.settings import MAX_PAGE_SIZE, ORDERS_PATH
from loaders.warehouse import dialect

SCHEMA = "bench_limit"
APP_DB_BATCH_ROWS = 50_000


@dataclass(frozen=True)
class Limit:
    path: str
    rows: int
    wall_s: float
    cpu_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s else 0.0


@contextmanager
def timed() -> Iterator[list[float]]:
    spent: list[float] = []
    wall, cpu = time.monotonic(), rusage_cpu()
    yield spent
    spent += [time.monotonic() - wall, rusage_cpu() - cpu]


@contextmanager
def _limit_schema(settings: Settings) -> Iterator[Any]:
    with dialect(settings).connect(read_only=False) as conn:
        cur = conn.cursor()
        cur.execute(f"drop schema if exists {SCHEMA} cascade")
        cur.execute(f"create schema {SCHEMA}")
        try:
            yield conn
        finally:
            conn.cursor().execute(f"drop schema if exists {SCHEMA} cascade")


def _text_table(conn: Any, name: str, columns: list[str]) -> None:
    body = ", ".join(f'"{column}" text' for column in columns)
    conn.cursor().execute(f"create table {SCHEMA}.{name} ({body})")


def files_limit(settings: Settings, folder: Path) -> Limit:
    """The warehouse's CSV reader over `folder` (readable lines only, see sources.readable_payments_copy)."""
    columns = list(PAYMENT_CSV_HEADER)
    with _limit_schema(settings) as conn:
        _text_table(conn, "payments", columns)
        with timed() as spent:
            if dialect(settings).name == "duckdb":
                types = ", ".join(f"'{column}': 'VARCHAR'" for column in columns)
                conn.execute(
                    f"insert into {SCHEMA}.payments select * from read_csv('{folder}/payments_*.csv', "
                    f"header = true, delim = ',', quote = '\"', columns = {{{types}}})"
                )
            else:
                cur = conn.cursor()
                for path in sorted(folder.glob("payments_*.csv")):
                    with open(path, "rb") as data:
                        cur.copy_expert(f"copy {SCHEMA}.payments from stdin with (format csv, header true)", data)
        rows = _count(conn, f"{SCHEMA}.payments")
    return Limit("payments_files", rows, *spent)


def api_limit(base_url: str, token: str) -> Limit:
    """Every page of the orders API, fetched and parsed, nothing landed."""
    rows = 0
    with requests.Session() as session, timed() as spent:
        session.headers["Authorization"] = f"Bearer {token}"
        params: dict[str, Any] = {"limit": MAX_PAGE_SIZE}
        while True:
            response = session.get(base_url + ORDERS_PATH, params=params, timeout=60)
            response.raise_for_status()
            page = json.loads(response.content)
            rows += len(page["data"])
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
    return Limit("shop_api", rows, *spent)


def app_db_limit(settings: Settings, database: Path) -> Limit:
    """The app database's tables read into Arrow batches and inserted into the warehouse."""
    rows = 0
    with _limit_schema(settings) as conn, closing(sqlite3.connect(database)) as source:
        tables = {
            table: [str(column[1]) for column in source.execute(f"pragma table_info({table})")]
            for table in ("customers", "products")
        }
        for table, columns in tables.items():
            _text_table(conn, table, columns)
        with timed() as spent:
            for table, columns in tables.items():
                selected = ", ".join(f'cast("{column}" as text)' for column in columns)
                cursor = source.execute(f"select {selected} from {table}")
                while batch := cursor.fetchmany(APP_DB_BATCH_ROWS):
                    arrow = pa.table(
                        [pa.array(values, pa.string()) for values in zip(*batch, strict=True)], names=columns
                    )
                    _insert_arrow(settings, conn, f"{SCHEMA}.{table}", arrow)
                    rows += arrow.num_rows
    return Limit("app_db", rows, *spent)


def _insert_arrow(settings: Settings, conn: Any, relation: str, arrow: pa.Table) -> None:
    if dialect(settings).name == "duckdb":
        conn.register("bench_batch", arrow)
        conn.execute(f"insert into {relation} select * from bench_batch")
        conn.unregister("bench_batch")
        return
    buffer = io.BytesIO()
    pa_csv.write_csv(arrow, buffer, pa_csv.WriteOptions(include_header=False))
    buffer.seek(0)
    conn.cursor().copy_expert(f"copy {relation} from stdin with (format csv)", buffer)


def _count(conn: Any, relation: str) -> int:
    cur = conn.cursor()
    cur.execute(f"select count(*) from {relation}")
    return int(cur.fetchone()[0])
