"""Apache Spark through a Thrift server (PyHive): no transactions, raw as Delta tables in a lake.

The loaders land raw as Delta tables through dlt's `filesystem` destination, merged on (key, version) as on
the other warehouses (loaders/warehouse/lake.py), and the tables are registered in Spark's catalog after
each load. PyHive comes with the `spark` extra only, so it is imported where a Spark connection is made.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import dlt
from dlt.common.schema import Schema

from loaders.core.outcomes import WarehouseUnreachable
from loaders.warehouse import lake
from loaders.warehouse.base import Dialect, Identity, PackageCounts
from loaders.warehouse.spark_server import SESSION_CONF


class Spark(Dialect):
    name = "spark"
    transactional = False

    def location(self) -> str:
        spark = self.settings.spark
        return f"Thrift server {spark.host}:{spark.port}"

    def state_key(self) -> str:
        spark = self.settings.spark
        return f"{spark.host}_{spark.port}"

    def dbt_env(self) -> dict[str, str]:
        spark = self.settings.spark
        return {
            **super().dbt_env(),
            "ELT_SPARK_HOST": spark.host,
            "ELT_SPARK_PORT": str(spark.port),
            "ELT_SPARK_USER": spark.user,
            "ELT_SPARK_METHOD": spark.method,
        }

    @contextlib.contextmanager
    def connect(self, read_only: bool = True) -> Iterator[Any]:
        """A Thrift (HiveServer2) connection, its session in UTC with ANSI off, as dbt's are. There is no
        transaction: every statement commits on its own."""
        from pyhive import hive  # the spark extra

        spark = self.settings.spark
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
        try:
            yield connection
        finally:
            connection.close()

    def ddl(self, statement: str) -> str:
        return spark_ddl(statement)

    def table_names(self, cursor: Any, schema: str) -> set[str]:
        cursor.execute("show databases")
        if schema not in {row[0] for row in cursor.fetchall()}:
            return set()
        cursor.execute(f"show tables in {schema}")
        return {row[1] for row in cursor.fetchall()}

    def update_rows(self, cursor: Any, table: str, values: dict[str, Any], where: tuple[str, Any]) -> None:
        """Spark cannot update a Parquet table: the table is rewritten through a side table (Spark refuses to
        overwrite a table the same statement reads); the ledger's tables are small."""
        column, value = where
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

    def dlt_destination(self) -> Any:
        return dlt.destinations.filesystem(bucket_url=self.settings.lake_path)

    def loader_file_format(self) -> str | None:
        return "parquet"  # what dlt hands deltalake (it writes Delta tables from Parquet only)

    def table_format(self) -> str | None:
        return lake.TABLE_FORMAT

    def collapse_packages(self, pipe: dlt.Pipeline) -> int:
        """dlt's merge into a Delta table does not de-duplicate a package (lake.py): done here, before it
        loads."""
        return lake.collapse_packages(pipe)

    def after_load(self, dataset: str, schema: Schema) -> None:
        """Make Spark's catalog hold the dataset's tables over their folders (Delta tables; `_dlt_loads` as
        JSON lines), and list their files again. Creating one is a catalog entry: dropping it never deletes a
        file."""
        tables = lake.lake_tables(self.settings, dataset)
        if not tables:
            return
        with self.connect(read_only=False) as conn:
            cursor = conn.cursor()
            cursor.execute(f"create database if not exists {dataset}")
            for table in tables:
                cursor.execute(
                    f"create table if not exists {dataset}.{table.name} using {table.file_format}"
                    f" location {spark_literal(table.location)}"
                )
                cursor.execute(f"refresh table {dataset}.{table.name}")

    def landed_identities(
        self, pipe: dlt.Pipeline, table: str, keys: Any, record: str = "_record"
    ) -> dict[tuple[Any, ...], Identity] | None:
        """Not read in the lake (dlt reads it through DuckDB's Delta extension, which DuckDB downloads): a
        re-read version is merged onto itself."""
        return None

    def raw_ready(self, dataset: str) -> bool:
        """A load that wrote no row still registers the dataset's tables the first time (they must exist)."""
        with self.connect() as conn:
            return bool(self.table_names(conn.cursor(), dataset))

    def forget_uncommitted_state_rows(self, pipe: dlt.Pipeline) -> None:
        """Nothing to forget: in the lake a state file written again replaces itself."""

    def package_counts(self, pipe: dlt.Pipeline, load_ids: tuple[str, ...]) -> PackageCounts:
        """The rows of the Delta tables under the packages' load ids; nothing staged there (the merge reads
        the package's files), and what was collapsed is counted before the load (`collapse_packages`)."""
        if not load_ids:
            return PackageCounts()
        landed, dead = lake.landed_and_dead_lettered(pipe, load_ids)
        return PackageCounts(landed, dead, landed + dead, 0)


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
        from pyhive.exc import OperationalError  # the spark extra

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
