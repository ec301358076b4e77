"""PostgreSQL, the production warehouse: advisory locks, roles, Parquet copied in through ADBC, indexes on raw."""

from __future__ import annotations

import contextlib
import io
import os
import zlib
from collections.abc import Iterator
from typing import Any

import dlt
import psycopg2
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.common.schema import Schema
from dlt.destinations.impl.postgres.postgres import PostgresParquetCopyJob
from dlt.destinations.impl.postgres.sql_client import Psycopg2SqlClient

from loaders.core.outcomes import RunLocked, WarehouseLost, WarehouseUnreachable, innermost_cause
from loaders.core.registry import RUN_LOCK_SESSION
from loaders.warehouse.base import Dialect, HeldLock

# The same name as the dbt macro `writer_lock_name()`; PostgreSQL's hashtext() makes it the lock key.
WRITER_LOCK_NAME = "elt:warehouse-writer"
RUN_LOCK_KEY = zlib.crc32(b"elt-run")


class Postgres(Dialect):
    name = "postgres"
    concurrent_writers = True
    has_roles = True
    accepts_moves = True

    def location(self) -> str:
        pg = self.settings.postgres
        return f"database {pg.dbname} on {pg.host}"

    def state_key(self) -> str:
        pg = self.settings.postgres
        return f"{pg.host}_{pg.dbname}"

    def dbt_env(self) -> dict[str, str]:
        pg = self.settings.postgres
        return {
            **super().dbt_env(),
            "PGHOST": pg.host,
            "PGPORT": str(pg.port),
            "PGUSER": pg.user,
            "PGPASSWORD": pg.password.get_secret_value(),
            "PGDATABASE": pg.dbname,
        }

    @contextlib.contextmanager
    def connect(self, read_only: bool = True) -> Iterator[Any]:
        pg = self.settings.postgres
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

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[HeldLock]:
        """A session advisory lock, held by a connection of its own for the whole command. It dies with that
        session (a server restart, a terminated backend): `check()` then says so and the run stops."""
        with self.connect(read_only=False) as conn:
            cursor = conn.cursor()
            cursor.execute("select pg_try_advisory_lock(%s), pg_backend_pid()", (RUN_LOCK_KEY,))
            taken, pid = cursor.fetchone()
            if not taken:
                raise RunLocked("another elt run holds the PostgreSQL advisory lock")
            held = SessionLock(cursor, str(pid))
            try:
                yield held
            finally:
                with contextlib.suppress(psycopg2.Error):  # a dead session took its lock with it
                    cursor.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))

    def connection_lost(self, exc: BaseException) -> bool:
        cause = innermost_cause(exc)
        return isinstance(cause, WarehouseUnreachable | psycopg2.OperationalError | psycopg2.InterfaceError) and (
            isinstance(cause, WarehouseUnreachable | psycopg2.InterfaceError) or _lost_connection(str(cause))
        )

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """The advisory lock every model and seed takes in its transaction (`serialize_writers()`)."""
        with self.connect(read_only=False) as conn:
            cursor = conn.cursor()
            cursor.execute("select pg_advisory_lock(hashtext(%s))", (WRITER_LOCK_NAME,))
            try:
                yield
            finally:
                cursor.execute("select pg_advisory_unlock(hashtext(%s))", (WRITER_LOCK_NAME,))

    def dlt_destination(self) -> Any:
        _adbc_copies_row_group_by_row_group()  # before any package is loaded, a resumed one included
        _connections_check_the_run_lock()
        return dlt.destinations.postgres(credentials=self.settings.postgres.dlt_credentials())

    def loader_file_format(self) -> str | None:
        """dlt would rewrite every Parquet file as CSV or INSERT statements in its normalize step (3.8 s of
        8.1 s for 100,000 orders); with the ADBC driver installed (a dependency) it copies the Parquet in as
        it is (the whole load 4.5 s), amended as `_adbc_copies_row_group_by_row_group` says."""
        return "parquet"

    def after_load(self, dataset: str, schema: Schema) -> None:
        """Indexes on the raw tables for the incremental models' look-ups, and fresh planner statistics.

        The intermediate models read raw rows by load id (the loads they have not consumed) and then every
        version of the affected keys. dlt creates no index, so after each load every raw table gets one on
        its natural key (the dlt schema's primary-key hint: a new source needs no entry) and one on
        `_dlt_load_id`; a plan chosen on the statistics of an empty table would scan for ever."""
        statements = []
        for table in schema.data_tables():
            name = table["name"]
            keys = [column for column, hints in table["columns"].items() if hints.get("primary_key")]
            for column in [*keys[:1], "_dlt_load_id"]:
                statements.append(f'create index if not exists "{name}__{column}" on {dataset}."{name}" ("{column}")')
            statements.append(f'analyze {dataset}."{name}"')
        with self.connect(read_only=False) as conn:
            cursor = conn.cursor()
            for statement in statements:
                cursor.execute(statement)

    def raw_ready(self, dataset: str) -> bool:
        """The indexes exist once a first load made them: a load that wrote no row changes no statistic."""
        with self.connect() as conn:
            cursor = conn.cursor()
            cursor.execute("select count(*) from pg_indexes where schemaname = %s", (dataset,))
            return int(cursor.fetchone()[0]) > 0

    def copy_rows(self, cursor: Any, relation: str, columns: list[str], batches: Iterator[Any]) -> None:
        """COPY, batch by batch (nulls unquoted, which COPY reads as NULL; strings quoted, so '' stays '')."""
        listed = ", ".join(f'"{name}"' for name in columns)
        for batch in batches:
            buffer = io.BytesIO()
            pa_csv.write_csv(batch, buffer)
            buffer.seek(0)
            cursor.copy_expert(f"copy {relation} ({listed}) from stdin with (format csv, header)", buffer)


class SessionLock(HeldLock):
    """The run lock as the PostgreSQL session holding it: gone when that session is."""

    def __init__(self, cursor: Any, session: str) -> None:
        self.cursor = cursor
        self.session = session

    def check(self) -> None:
        try:
            self.cursor.execute("select 1")
            self.cursor.fetchone()
        except psycopg2.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise WarehouseLost(f"the PostgreSQL session holding the run lock is gone ({reason})") from None


LOST_CONNECTION = (
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "could not connect",
    "connection already closed",
    "no connection to the server",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "ssl syscall error",
    "eof detected",
)


def _lost_connection(message: str) -> bool:
    lowered = message.lower()
    return any(sign in lowered for sign in LOST_CONNECTION)


HOLDS_A_LOCK = "select exists (select 1 from pg_locks where locktype = 'advisory' and granted and pid = %s)"


def _connections_check_the_run_lock() -> None:
    """An amendment to dlt's PostgreSQL client: a connection it opens while a run holds its lock (the
    harness names the session in ELT_RUN_LOCK_SESSION) first checks that session still holds it. dlt
    retries a load job whose connection broke; after a server restart the run's lock is gone with its
    session, and the retry must not write without it: it fails, terminally, instead."""
    if getattr(Psycopg2SqlClient.open_connection, "checks_the_run_lock", False):
        return
    open_connection = Psycopg2SqlClient.open_connection

    def checked(self: Psycopg2SqlClient) -> Any:
        conn = open_connection(self)
        session = os.environ.get(RUN_LOCK_SESSION)
        if session:
            with conn.cursor() as cursor:
                cursor.execute(HOLDS_A_LOCK, (int(session),))
                if not cursor.fetchone()[0]:
                    raise DestinationTerminalException("elt: the run lost its run lock: nothing more is written")
        return conn

    checked.checks_the_run_lock = True  # type: ignore[attr-defined]
    Psycopg2SqlClient.open_connection = checked  # type: ignore[method-assign]


def _adbc_copies_row_group_by_row_group() -> None:
    """Two amendments to dlt 1.31's ADBC copy of a Parquet file into PostgreSQL:

    - it hands the driver the whole file, which reads it into memory at once (1.1 GB of the loaders'
      peak at 1M orders, 0.35 GB without ADBC); copied row group by row group (the loaders' 25,000-row
      tables, landing.batch.BATCH_ROWS), in the same transaction, as dlt already does for SQL Server, the
      memory stays that of one row group;
    - it fails on a file of zero rows ("Must pass schema, or at least one RecordBatch"), which the
      loaders yield so that a table exists (`Batch.finish`): such a file has nothing to copy."""
    if getattr(PostgresParquetCopyJob.run, "skips_empty_files", False):
        return
    PostgresParquetCopyJob._ingest_per_rowgroup = True
    copy = PostgresParquetCopyJob.run

    def run(self: PostgresParquetCopyJob) -> None:
        if pq.ParquetFile(self._file_path).metadata.num_rows > 0:
            copy(self)

    run.skips_empty_files = True  # type: ignore[attr-defined]
    PostgresParquetCopyJob.run = run  # type: ignore[method-assign]
