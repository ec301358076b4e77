"""A plain DB-API connection to the warehouse, for the harness's own reads and writes (ledger, summary, lock):
DuckDB's, psycopg2's, or PyHive's to a Spark Thrift server."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
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
    elif settings.target == "spark":
        conn = _connect_spark(settings)
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


def _connect_spark(settings: Settings) -> Any:
    """A Thrift (HiveServer2) connection to Spark, its session in UTC with ANSI off, as dbt's are. There is no
    transaction: every statement commits on its own."""
    from pyhive import hive

    from loaders.spark_server import SESSION_CONF

    spark = settings.spark
    try:
        conn = hive.connect(host=spark.host, port=spark.port, username=spark.user)
    except Exception as exc:  # thrift's transport errors, refused connections
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise WarehouseUnreachable(
            f"cannot connect to the Spark Thrift server at {spark.host}:{spark.port}: {reason}"
        ) from None
    connection = SparkConnection(conn)
    cursor = connection.cursor()
    for name, value in SESSION_CONF.items():
        cursor.execute(f"set {name}={value}")
    return connection


class SparkError(RuntimeError):
    """A statement Spark refused: its own one-line message (PyHive's carries the server's whole stack)."""


class SparkConnection:
    """PyHive's connection as the harness uses a DB-API one: `%s` parameters (timestamps included, which
    PyHive cannot send), no transactions, errors in one line."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def cursor(self) -> SparkCursor:
        return SparkCursor(self._conn.cursor())

    def rollback(self) -> None:
        """Nothing to roll back: every statement commits on its own."""

    def close(self) -> None:
        self._conn.close()


class SparkCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        from pyhive.exc import OperationalError

        if params:
            sql = sql.replace("%", "%%").replace("%%s", "%s") % tuple(spark_literal(value) for value in params)
        try:
            self._cursor.execute(sql)
        except OperationalError as exc:
            status = exc.args[0].status if exc.args and hasattr(exc.args[0], "status") else None
            message = getattr(status, "errorMessage", None) or str(exc)
            raise SparkError(message.splitlines()[0].removeprefix("Error running query: ")) from None

    def fetchall(self) -> list[tuple[Any, ...]]:
        dates = self._date_columns()
        return [self._typed(row, dates) for row in self._cursor.fetchall()]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        return None if row is None else self._typed(row, self._date_columns())

    def _date_columns(self) -> set[int]:
        return {i for i, column in enumerate(self._cursor.description or ()) if column[1] == "DATE_TYPE"}

    @staticmethod
    def _typed(row: Sequence[Any], dates: set[int]) -> tuple[Any, ...]:
        """PyHive hands dates over as text; the other drivers as dates."""
        return tuple(
            date.fromisoformat(value) if i in dates and isinstance(value, str) else value for i, value in enumerate(row)
        )

    @property
    def description(self) -> Any:
        return self._cursor.description


def spark_literal(value: Any) -> str:
    """A Python value as a Spark SQL literal (Spark reads a backslash in a string literal as an escape)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        instant = value.astimezone(UTC) if value.tzinfo else value
        return f"timestamp'{instant.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def spark_ddl(statement: str) -> str:
    """A `create table` of the harness's (PostgreSQL and DuckDB spelling) as Spark reads it: its one text
    and one timestamp type, no keys or NOT NULL (Parquet tables enforce neither), Parquet."""
    statement = re.sub(r",\s*primary key \([^)]*\)", "", statement, flags=re.IGNORECASE)
    statement = re.sub(r"\s+(primary key|not null)", "", statement, flags=re.IGNORECASE)
    statement = re.sub(r"\bvarchar(\(\d+\))?", "string", statement, flags=re.IGNORECASE)
    statement = re.sub(r"timestamp with time zone", "timestamp", statement, flags=re.IGNORECASE)
    return statement + (" using parquet" if statement.lstrip().lower().startswith("create table") else "")


def update_rows(settings: Settings, cursor: Any, table: str, values: dict[str, Any], where: tuple[str, Any]) -> None:
    """`update table set <values> where <column> = <value>`. Spark cannot update a Parquet table: the table
    is rewritten through a side table (Spark refuses to overwrite a table the same statement reads); the
    ledger's tables are small."""
    column, value = where
    if settings.target != "spark":
        mark = "%s" if settings.target == "postgres" else "?"
        assignments = ", ".join(f"{name} = {mark}" for name in values)
        cursor.execute(f"update {table} set {assignments} where {column} = {mark}", (*values.values(), value))
        return
    cursor.execute(f"describe {table}")
    types = {name: kind for name, kind, *_ in cursor.fetchall() if name and not name.startswith("#")}
    side = f"{table}__elt_rewrite"
    matches = f"{column} = {spark_literal(value)}"
    select = ", ".join(
        f"case when {matches} then cast({spark_literal(values[name])} as {kind}) else {name} end as {name}"
        if name in values
        else name
        for name, kind in types.items()
    )
    cursor.execute(f"drop table if exists {side}")
    cursor.execute(f"create table {side} using parquet as select {select} from {table}")
    cursor.execute(f"insert overwrite table {table} select * from {side}")
    cursor.execute(f"drop table {side}")


def table_names(settings: Settings, cursor: Any, schema: str) -> set[str]:
    """The tables of a schema (none when the schema does not exist)."""
    if settings.target == "spark":
        cursor.execute("show databases")
        if schema not in {row[0] for row in cursor.fetchall()}:
            return set()
        cursor.execute(f"show tables in {schema}")
        return {row[1] for row in cursor.fetchall()}
    cursor.execute(f"select table_name from information_schema.tables where table_schema = '{schema}'")
    return {row[0] for row in cursor.fetchall()}


def fetch_all(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with connect(settings) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
