"""Every table the harness owns in the `ops` schema, declared once: the run ledger, the backfill chunks and
the dead-letter resolutions. dbt never builds them (no `--full-refresh` touches them) and `elt reset`
keeps them; `elt grants` creates them for the transformer and lets the loader write them.

Created when first needed, checked first: with split roles the loader may write these tables but not
create anything in `ops`, not even `if not exists`.
"""

from __future__ import annotations

from dataclasses import dataclass

from loaders.core.settings import Settings
from loaders.warehouse import dialect

SCHEMA = "ops"


@dataclass(frozen=True)
class OpsTable:
    name: str
    columns: str  # the body of `create table`, in PostgreSQL's and DuckDB's spelling
    loader_may: str  # what the loader role may do with it (`elt grants`)

    @property
    def qualified(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def ddl(self) -> str:
        return f"create table if not exists {self.qualified} ({self.columns})"


RUNS = OpsTable(
    "elt_runs",
    """
        run_id varchar primary key,
        command varchar not null,
        arguments varchar not null,
        started_at timestamp with time zone not null,
        finished_at timestamp with time zone,
        status varchar not null,
        exit_code integer,
        error varchar,
        dbt_invocation_id varchar,
        models_built integer,
        models_failed integer,
        tests_passed integer,
        tests_failed integer,
        quarantine_opened integer,
        quarantine_resolved integer,
        summary varchar
    """,
    "select, insert, update",
)
RUN_SOURCES = OpsTable(
    "elt_run_sources",
    """
        run_id varchar not null,
        source varchar not null,
        status varchar not null,
        error varchar,
        load_ids varchar not null,
        cursor_before varchar,
        cursor_after varchar,
        files_read integer,
        extracted integer not null,
        landed integer not null,
        dead_lettered integer not null,
        retries integer not null,
        resumed_packages integer not null,
        primary key (run_id, source)
    """,
    "select, insert, update",
)
RUN_BOOKS = OpsTable(
    "elt_run_books",
    """
        run_id varchar not null,
        book varchar not null,
        total_name varchar not null,
        total integer not null,
        parts varchar not null,
        difference integer not null,
        primary key (run_id, book)
    """,
    "select, insert, update",
)
BACKFILL_CHUNKS = OpsTable(
    "elt_backfill_chunks",
    """
        backfill_id varchar not null,
        source varchar not null,
        window_start timestamp with time zone not null,
        window_end timestamp with time zone not null,
        requested_at timestamp with time zone not null,
        chunk_start timestamp with time zone not null,
        chunk_end timestamp with time zone not null,
        status varchar not null,
        landed integer,
        dead_lettered integer,
        load_ids varchar,
        error varchar,
        run_id varchar,
        finished_at timestamp with time zone,
        primary key (backfill_id, chunk_start)
    """,
    "select, insert, update",
)
# resolutions are only ever added: a replay never changes or deletes one
DEAD_LETTER_RESOLUTIONS = OpsTable(
    "dead_letter_resolutions",
    """
        dead_letter_id varchar not null,
        source varchar not null,
        resource varchar not null,
        resolved_at timestamp with time zone not null,
        how varchar not null,
        load_id varchar not null,
        run_id varchar,
        primary key (dead_letter_id, load_id)
    """,
    "select, insert",
)
# the full builds in which nothing failed, with the fingerprint of the project files they ran: what lets a
# run with nothing new leave its build out (loaders/ops/build_state.py)
BUILDS = OpsTable(
    "elt_builds",
    """
        run_id varchar not null,
        fingerprint varchar not null,
        models_built integer not null,
        finished_at timestamp with time zone not null
    """,
    "select, insert",
)
LEDGER = (RUNS, RUN_SOURCES, RUN_BOOKS)
ALL = (*LEDGER, BACKFILL_CHUNKS, DEAD_LETTER_RESOLUTIONS, BUILDS)


def ensure(settings: Settings, tables: tuple[OpsTable, ...]) -> None:
    """Create the tables that are missing (and the schema)."""
    warehouse = dialect(settings)
    with warehouse.connect(read_only=False) as conn:
        cursor = conn.cursor()
        if {table.name for table in tables} <= warehouse.table_names(cursor, SCHEMA):
            return
        cursor.execute(f"create schema if not exists {SCHEMA}")
        for table in tables:
            cursor.execute(warehouse.ddl(table.ddl))
