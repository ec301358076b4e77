"""What differs between warehouses on the Python side, one class per target beside dbt's dispatch macros.

`Dialect` says how the harness talks to a warehouse — its connection (a DB-API one, autocommitting, in
UTC), query placeholders, DDL spelling, table listing, row updates, the run and writer locks — and how
dlt lands into it (destination, file format, what to do after a load, how to count what a load holds).
`DuckDB`, `Postgres` and `Spark` (this package's modules) override what they do differently; no other
module asks which warehouse it is talking to.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import dlt
from dlt.common.schema import Schema
from dlt.common.schema.typing import C_DLT_LOAD_ID, LOADS_TABLE_NAME, PIPELINE_STATE_TABLE_NAME
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from loaders.core.outcomes import Check, RunLocked, WarehouseUnreachable, innermost_cause
from loaders.core.registry import DEAD_LETTERS_TABLE, Entity
from loaders.core.settings import Settings

PRESENT_CHUNK = 2000  # keys per look-up of `landed_identities`
Identity = tuple[str, datetime | None]
"""What makes a landed row the same as a new one of its (key, version): the md5 of its `_record` (the record
as it arrived, whole) and its `_cursor_at`; a dead letter the same as a new one of its id: the md5 of its
`error`."""


def as_instant(value: Any) -> datetime | None:
    """A timestamp as the drivers hand it back, as an aware UTC datetime (None stays None)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class PackageCounts:
    """What the warehouse holds of some load packages, counted there after the load.

    `landed`/`dead_lettered`: rows of the data tables / of `dead_letters` under the packages' load ids.
    `staged`: rows the packages put in the staging dataset, where dlt merges from (it keeps the last
    package's rows until the next load). `collapsed`: staged rows the merge left out because a later row
    of the same package had the same primary key (a record served twice in one extraction).
    """

    landed: int = 0
    dead_lettered: int = 0
    staged: int = 0
    collapsed: int = 0

    def __add__(self, other: PackageCounts) -> PackageCounts:
        return PackageCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


class Dialect:
    """A warehouse as the harness and the loaders use it. Subclasses set `name` and override what differs."""

    name: ClassVar[str]
    # one placeholder of the driver's paramstyle (psycopg2's and PyHive's `%s`, DuckDB's `?`)
    placeholder: ClassVar[str] = "%s"
    # whether a `begin` ... `commit` makes several statements one change (Spark commits each on its own)
    transactional: ClassVar[bool] = True
    # whether several processes may write at once (each load still under the writer lock)
    concurrent_writers: ClassVar[bool] = False
    # whether the warehouse has roles and privileges for `elt grants`
    has_roles: ClassVar[bool] = False
    # whether `elt move` can carry a DuckDB deployment into it (`copy_rows`)
    accepts_moves: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- where it is ---------------------------------------------------------------------------------------
    def location(self) -> str:
        """Where the warehouse is, for messages."""
        raise NotImplementedError

    def state_key(self) -> str:
        """A name for this warehouse among others of its kind (its local dlt folder's)."""
        raise NotImplementedError

    def pipelines_dir(self) -> Path:
        """dlt's working folder for this warehouse: one per target and warehouse, so a DuckDB and a
        PostgreSQL deployment never share pending packages."""
        return self.settings.state_dir / "pipelines" / self.name / self.state_key()

    def dbt_env(self) -> dict[str, str]:
        """What `profiles.yml` reads; the harness passes it to the dbt subprocess."""
        settings = self.settings
        return {
            "ELT_TARGET": self.name,
            "ELT_DUCKDB_PATH": str(settings.duckdb_path),
            "ELT_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
            "ELT_LAKE_PATH": settings.lake_path,
        }

    def not_created_yet(self) -> str | None:
        """Why there is nothing to read yet (an embedded warehouse not created), or None."""
        return None

    # -- talking to it -------------------------------------------------------------------------------------
    def connect(self, read_only: bool = True) -> contextlib.AbstractContextManager[Any]:
        """A DB-API connection that autocommits, its session in UTC as dbt's are."""
        raise NotImplementedError

    def placeholders(self, n: int) -> str:
        return ", ".join([self.placeholder] * n)

    def ddl(self, statement: str) -> str:
        """A `create` statement of the harness's (PostgreSQL and DuckDB spelling) as this warehouse reads it."""
        return statement

    def table_names(self, cursor: Any, schema: str) -> set[str]:
        """The tables of a schema (none when the schema does not exist)."""
        cursor.execute(f"select table_name from information_schema.tables where table_schema = '{schema}'")
        return {row[0] for row in cursor.fetchall()}

    def column_names(self, cursor: Any, schema: str, table: str) -> list[str]:
        """A table's columns in order (none when it does not exist)."""
        cursor.execute(
            "select column_name from information_schema.columns"
            f" where table_schema = {self.placeholder} and table_name = {self.placeholder} order by ordinal_position",
            (schema, table),
        )
        return [row[0] for row in cursor.fetchall()]

    def update_rows(self, cursor: Any, table: str, values: dict[str, Any], where: tuple[str, Any]) -> None:
        """`update table set <values> where <column> = <value>`."""
        column, value = where
        mark = self.placeholder
        assignments = ", ".join(f"{name} = {mark}" for name in values)
        cursor.execute(f"update {table} set {assignments} where {column} = {mark}", (*values.values(), value))

    def fetch_all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cursor = conn.cursor()
            cursor.execute(sql, params) if params else cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]

    def count_versions(self, entity: Entity, rows: str) -> str:
        """An aggregate counting the distinct (key, version) of `rows` (a `from ... where ...` of raw)."""
        return f"select count(*) {rows}"

    def check(self) -> Check:
        """Whether the warehouse answers (`elt check`)."""
        where = self.location()
        try:
            self.fetch_all("select 1")
        except (WarehouseUnreachable, RunLocked) as exc:
            return Check("warehouse", False, str(exc))
        except Exception as exc:  # a DuckDB file that is not a database, say
            return Check("warehouse", False, f"{self.name} {where}: {type(exc).__name__}: {exc}".splitlines()[0])
        return Check("warehouse", True, f"{self.name} {where} answers")

    # -- locks -----------------------------------------------------------------------------------------------
    def run_lock(self) -> contextlib.AbstractContextManager[HeldLock]:
        """One `elt` command that writes at a time: a second one is refused at once (RunLocked)."""
        return lock_file(self.pipelines_dir().with_name(self.pipelines_dir().name + ".lock"))

    def connection_lost(self, exc: BaseException) -> bool:
        """Whether an error says the warehouse went away (rather than refused a statement)."""
        return isinstance(innermost_cause(exc), WarehouseUnreachable)

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Wait until no other writer (a dbt model, another loader) holds the warehouse, then hold it. The
        embedded warehouses admit one writing process at a time by themselves."""
        yield

    # -- dlt -----------------------------------------------------------------------------------------------
    def dlt_destination(self) -> Any:
        raise NotImplementedError

    def loader_file_format(self) -> str | None:
        """How landed Arrow tables travel to the warehouse (None: dlt's default for the destination)."""
        return None

    def table_format(self) -> str | None:
        """The table format dlt writes raw in (None: the destination's own tables)."""
        return None

    def collapse_packages(self, pipe: dlt.Pipeline) -> int:
        """Make the packages pending in the pipeline's folder merge as the loaders' hints say, before they load;
        the rows left out. Nothing to do where dlt merges through a staging table: it keeps one row per
        primary key there (`dedup_sort`), and counts the rest (`package_counts`)."""
        return 0

    def after_load(self, dataset: str, schema: Schema) -> None:
        """What the warehouse needs once a load that wrote rows into `dataset` committed (indexes and fresh
        statistics, a catalog's refresh)."""

    def raw_ready(self, dataset: str) -> bool:
        """Whether a load that wrote no row can leave `after_load` out: what it does is there already."""
        return True

    def forget_uncommitted_state_rows(self, pipe: dlt.Pipeline) -> None:
        """Delete the state rows that pending packages already wrote, so their resume can write them again.

        A load job commits in the warehouse, then dlt records locally that it is done; a kill between the
        two makes the resume run the job again. Data tables merge from a staging table, so that is
        harmless, but `_dlt_pipeline_state` is appended to and its `_dlt_id` is unique on PostgreSQL: the
        repeated insert would fail the package on every run after. Rows of a load that is not in
        `_dlt_loads` are not state yet (dlt restores state only from completed loads), and the package
        that wrote them writes them again.
        """
        pending = tuple(pipe.list_normalized_load_packages())
        if not pending:
            return
        placeholders = ", ".join(["%s"] * len(pending))
        with pipe.sql_client() as client:
            if not client.has_dataset():
                return
            state = client.make_qualified_table_name(PIPELINE_STATE_TABLE_NAME)
            loads = client.make_qualified_table_name(LOADS_TABLE_NAME)
            # no such table: killed before the first load created them, nothing to forget
            with contextlib.suppress(DatabaseUndefinedRelation):
                client.execute_sql(
                    f"delete from {state} where {C_DLT_LOAD_ID} in ({placeholders})"
                    f" and {C_DLT_LOAD_ID} not in (select load_id from {loads})",
                    *pending,
                )

    def package_counts(self, pipe: dlt.Pipeline, load_ids: tuple[str, ...]) -> PackageCounts:
        """Count in the warehouse what these just-loaded packages hold (see PackageCounts): every data table
        with their load ids, in the dataset and in its staging dataset."""
        if not load_ids:
            return PackageCounts()
        schema = pipe.default_schema
        tables = [table["name"] for table in schema.data_tables() if C_DLT_LOAD_ID in table.get("columns", {})]
        ids = ", ".join(["%s"] * len(load_ids))
        landed = dead = staged = collapsed = 0
        with pipe.sql_client() as client:
            for table in tables:
                key = ", ".join(
                    client.escape_column_name(name)
                    for name, column in schema.get_table_columns(table).items()
                    if column.get("primary_key")
                )
                (count,) = client.execute_sql(
                    f"select count(*) from {client.make_qualified_table_name(table)} where {C_DLT_LOAD_ID} in ({ids})",
                    *load_ids,
                )[0]
                if table == DEAD_LETTERS_TABLE:
                    dead += int(count)
                else:
                    landed += int(count)
                with client.with_staging_dataset(), contextlib.suppress(DatabaseUndefinedRelation):
                    rows, distinct = client.execute_sql(
                        f"select count(*), count(distinct ({key})) from {client.make_qualified_table_name(table)}"
                        f" where {C_DLT_LOAD_ID} in ({ids})",
                        *load_ids,
                    )[0]
                    staged += int(rows)
                    collapsed += int(rows) - int(distinct)
        return PackageCounts(landed, dead, staged, collapsed)

    def landed_identities(
        self, pipe: dlt.Pipeline, table: str, keys: Any, record: str = "_record"
    ) -> dict[tuple[Any, ...], Identity] | None:
        """For these primary keys (an Arrow table of the key columns), what raw's `table` holds under each:
        the digest of its `record` column and its cursor value (see `Identity`); through dlt's own
        connection. Empty when the table does not exist yet; None where the warehouse cannot say (then every
        row is landed)."""
        names = list(keys.column_names)
        found: dict[tuple[Any, ...], Identity] = {}
        with pipe.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            listed = ", ".join(client.escape_column_name(name) for name in names)
            cursor = "_cursor_at" if "_cursor_at" in pipe.default_schema.get_table_columns(table) else "null"
            for batch in keys.to_batches(max_chunksize=PRESENT_CHUNK):
                rows = list(zip(*(batch.column(i).to_pylist() for i in range(len(names))), strict=True))
                if not rows:
                    continue
                tuples = ", ".join("(" + ", ".join(["%s"] * len(names)) + ")" for _ in rows)
                try:
                    landed = client.execute_sql(
                        f"select {listed}, md5({client.escape_column_name(record)}), {cursor} from {qualified}"
                        f" where ({listed}) in (values {tuples})",
                        *(value for row in rows for value in row),
                    )
                except DatabaseUndefinedRelation:
                    return {}
                for *key, digest, cursor_at in landed:
                    found[tuple(key)] = (str(digest), as_instant(cursor_at))
        return found

    # -- moving a deployment in ----------------------------------------------------------------------------
    def copy_rows(self, cursor: Any, relation: str, columns: list[str], batches: Iterator[Any]) -> None:
        """Append Arrow record batches to a table (`elt move`)."""
        raise NotImplementedError(f"elt move cannot copy into {self.name}")


class HeldLock:
    """The run lock while a command holds it. `check()` raises WarehouseLost when it is gone (the session
    that held it died with the server): the run then writes nothing more. A lock file cannot be lost."""

    session: str = ""  # the warehouse session holding it, for dbt's models to check (PostgreSQL)

    def check(self) -> None:
        """Nothing to check: the process holds the file."""


@contextlib.contextmanager
def lock_file(path: Path) -> Iterator[HeldLock]:
    """Hold an exclusive lock on a file for the block, or raise RunLocked at once when another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(f"another elt run holds {path}") from None
        yield HeldLock()
