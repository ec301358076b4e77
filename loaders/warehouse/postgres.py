"""PostgreSQL, the production warehouse: advisory locks, roles, Parquet copied in through ADBC, indexes on raw."""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Iterator
from typing import Any

import dlt
import psycopg2
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from dlt.common.schema import Schema
from dlt.destinations.impl.postgres.postgres import PostgresParquetCopyJob

from loaders.core.outcomes import RunLocked, WarehouseUnreachable
from loaders.warehouse.base import Dialect

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
    def run_lock(self) -> Iterator[None]:
        """A session advisory lock, held by a connection of its own for the whole command."""
        with self.connect(read_only=False) as conn:
            cursor = conn.cursor()
            cursor.execute("select pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,))
            if not cursor.fetchone()[0]:
                raise RunLocked("another elt run holds the PostgreSQL advisory lock")
            try:
                yield
            finally:
                cursor.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))

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

    def copy_rows(self, cursor: Any, relation: str, columns: list[str], batches: Iterator[Any]) -> None:
        """COPY, batch by batch (nulls unquoted, which COPY reads as NULL; strings quoted, so '' stays '')."""
        listed = ", ".join(f'"{name}"' for name in columns)
        for batch in batches:
            buffer = io.BytesIO()
            pa_csv.write_csv(batch, buffer)
            buffer.seek(0)
            cursor.copy_expert(f"copy {relation} ({listed}) from stdin with (format csv, header)", buffer)


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
