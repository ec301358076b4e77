"""What a user could pick instead of each loader: dlt's own built-in source for the same path, run on the
same world into the same warehouse, timed beside the loader and the raw limit.

- payments files: `dlt.sources.filesystem` piped into its `read_csv` reader (pandas, chunks of 10,000
  rows: dlt's defaults), over the readable copy of the folder (the raw
  limit's: the built-in stops at the first damaged line, so it is given none). dlt's other CSV reader,
  `read_csv_duckdb`, fails with DuckDB 2.0 (it calls a relation's `fetchmany`, which 2.0 removed);
- orders API: `dlt.sources.rest_api` with the API's bearer token and its cursor paginator (`next_cursor` ->
  `cursor`), pages of the loader's size; dlt unnests the items into a child table, as by default;
- app database: `dlt.sources.sql_database` with its pyarrow backend over the SQLite file.

Each appends (`write_disposition="append"`): merged on their keys, as the loaders land, the built-ins stop
at the first record without one (dlt's "Cannot coerce NULL" in its normalize step), and the simulator
serves such records on every path. Appending is also the cheapest a built-in can do, so the ratio
flatters it.

Each is a dlt pipeline of its own in a temporary folder, landing into a dataset of its own that is dropped
afterwards, run in this process: wall and CPU are this process's (DuckDB's threads included; PostgreSQL's
backends are in the server's CPU). The rows are the source's records (the raw limit's count), so rows/s
compare across the three.

What they do not do, and the loaders do (said in results.md): no landability check and no dead letters
(a record without its key, or a damaged line, fails the pipeline or lands as it is), no `_version` /
`_delivered_at` / `_delivery_seq` columns for dbt's "latest version" and "delivered last", no text-exact
landing (dlt infers types: `10.50` may land as a double), no run ledger or books.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.sources.filesystem import filesystem, read_csv
from dlt.sources.rest_api import rest_api_source
from dlt.sources.sql_database import sql_database

from bench.limits import Limit, timed
from loaders.core.settings import Settings
from loaders.sources.shop_api.settings import MAX_PAGE_SIZE, ORDERS_PATH
from loaders.warehouse import dialect

DATASET = "bench_peer"
PEER_WHAT = {
    "payments_files": "dlt built-in: filesystem + read_csv",
    "shop_api": "dlt built-in: rest_api",
    "app_db": "dlt built-in: sql_database (pyarrow backend)",
}
PEER_DOES_NOT = (
    "dlt's built-ins (the `dlt built-in` rows) land what they read as dlt infers it: no landability check and no "
    "dead letters (the files' built-in reads the readable copy; a damaged line would stop it), no version, "
    "delivery or record columns for dbt's rules, typed rather than text-exact values, no ledger or books."
)


@contextmanager
def _peer_pipeline(settings: Settings, name: str) -> Iterator[dlt.Pipeline]:
    """A pipeline of its own, landing into `bench_peer` in the warehouse; the dataset dropped afterwards."""
    warehouse = dialect(settings)
    with tempfile.TemporaryDirectory(prefix=f"elt-bench-peer-{name}-") as folder:
        pipe = dlt.pipeline(
            pipeline_name=f"bench_peer_{name}",
            destination=warehouse.dlt_destination(),
            dataset_name=DATASET,
            pipelines_dir=folder,
        )
        try:
            yield pipe
        finally:
            with warehouse.connect(read_only=False) as conn:
                conn.cursor().execute(f"drop schema if exists {DATASET} cascade")


def _run(settings: Settings, name: str, rows: int, make: Callable[[], Any]) -> Limit:
    with _peer_pipeline(settings, name) as pipe, timed() as spent:
        pipe.run(make(), write_disposition="append")
    return Limit(name, rows, *spent)


def files_peer(settings: Settings, folder: Path, rows: int) -> Limit:
    def source() -> Any:
        files = filesystem(bucket_url=str(folder), file_glob="payments_*.csv")
        reader = (files | read_csv()).with_name("payments")
        return reader

    return _run(settings, "payments_files", rows, source)


def api_peer(settings: Settings, base_url: str, token: str, rows: int) -> Limit:
    def source() -> Any:
        return rest_api_source(
            {
                "client": {
                    "base_url": base_url,
                    "auth": {"type": "bearer", "token": token},
                    "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"},
                },
                "resources": [
                    {
                        "name": "orders",
                        "endpoint": {"path": ORDERS_PATH, "params": {"limit": MAX_PAGE_SIZE}, "data_selector": "data"},
                    }
                ],
            }
        )

    return _run(settings, "shop_api", rows, source)


def app_db_peer(settings: Settings, database: Path, rows: int) -> Limit:
    def source() -> Any:
        return sql_database(
            credentials=f"sqlite:///{database}", table_names=["customers", "products"], backend="pyarrow"
        )

    return _run(settings, "app_db", rows, source)
