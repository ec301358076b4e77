"""A plain DB-API connection to the warehouse, for the harness's own reads (summary, lock)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from loaders.settings import Settings


class RunLocked(RuntimeError):
    """Another `elt` run, or another process writing the DuckDB file, holds the warehouse."""


class WarehouseUnreachable(RuntimeError):
    """The warehouse refused or never answered the connection: the driver's reason, never a password."""


@contextlib.contextmanager
def connect(settings: Settings, read_only: bool = True) -> Iterator[Any]:
    """A connection whose session is in UTC, as dbt's are, whatever the host's or the server's default zone."""
    if settings.target == "duckdb":
        import duckdb

        try:
            conn = duckdb.connect(str(settings.duckdb_path), read_only=read_only)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            # DuckDB's own message names the process holding the file (a plain `dbt build`, say)
            raise RunLocked(f"the DuckDB file is in use by another process: {exc}") from None
        # A SET, not connect(config=...): DuckDB refuses a second in-process connection to the same file
        # with a different configuration than the first (dlt's, say).
        conn.execute("set TimeZone = 'UTC'")
    else:
        import psycopg2

        pg = settings.postgres
        try:
            conn = psycopg2.connect(
                host=pg.host,
                port=pg.port,
                user=pg.user,
                password=pg.password.get_secret_value(),
                dbname=pg.dbname,
                options="-c timezone=UTC",
            )
        except psycopg2.OperationalError as exc:
            reason = " ".join(str(exc).split())  # libpq's message: host, port, user and why, no password
            raise WarehouseUnreachable(f"cannot connect to PostgreSQL database {pg.dbname!r}: {reason}") from None
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
