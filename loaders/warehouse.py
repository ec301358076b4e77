"""A plain DB-API connection to the warehouse, for the harness's own reads (summary, lock)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from loaders.settings import Settings


@contextlib.contextmanager
def connect(settings: Settings, read_only: bool = True) -> Iterator[Any]:
    if settings.target == "duckdb":
        import duckdb

        conn = duckdb.connect(str(settings.duckdb_path), read_only=read_only)
    else:
        import psycopg2

        pg = settings.postgres
        conn = psycopg2.connect(
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=pg.password.get_secret_value(),
            dbname=pg.dbname,
        )
        conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def fetch_all(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with connect(settings) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
