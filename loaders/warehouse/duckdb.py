"""DuckDB, the embedded default: one file, one writing process at a time (the file's own lock)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import dlt
import duckdb
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from loaders.core.outcomes import Check, RunLocked
from loaders.warehouse.base import Dialect, HeldLock, Identity, as_instant, lock_file


class DuckDB(Dialect):
    name = "duckdb"
    placeholder = "?"

    def location(self) -> str:
        return str(self.settings.duckdb_path)

    def state_key(self) -> str:
        return self.settings.duckdb_path.stem

    def not_created_yet(self) -> str | None:
        path = self.settings.duckdb_path
        return None if path.exists() else f"nothing loaded yet: {path} does not exist"

    @contextlib.contextmanager
    def connect(self, read_only: bool = True) -> Iterator[Any]:
        try:
            conn = duckdb.connect(str(self.settings.duckdb_path), read_only=read_only)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            # DuckDB's own message names the process holding the file (a plain `dbt build`, say)
            raise RunLocked(f"the DuckDB file is in use by another process: {exc}") from None
        # A SET, not connect(config=...): DuckDB refuses a second in-process connection to the same file
        # with a different configuration than the first (dlt's, say).
        conn.execute("set TimeZone = 'UTC'")
        try:
            yield conn
        finally:
            conn.close()

    def check(self) -> Check:
        path = self.settings.duckdb_path
        if path.exists():
            return super().check()
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            return Check("warehouse", False, f"duckdb {path} does not exist and {folder} is not writable")
        return Check("warehouse", True, f"duckdb {path} does not exist yet: the first run creates it")

    def run_lock(self) -> contextlib.AbstractContextManager[HeldLock]:
        """A lock file beside the DuckDB file."""
        path = self.settings.duckdb_path
        return lock_file(path.with_name(path.name + ".lock"))

    def landed_identities(
        self, pipe: dlt.Pipeline, table: str, keys: Any, record: str = "_record"
    ) -> dict[tuple[Any, ...], Identity] | None:
        """The keys joined where they are, as an Arrow table DuckDB reads in place."""
        names = list(keys.column_names)
        with pipe.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            escaped = [client.escape_column_name(name) for name in names]
            conditions = " and ".join(f"raw.{column} = package.{column}" for column in escaped)
            cursor = "raw._cursor_at" if "_cursor_at" in pipe.default_schema.get_table_columns(table) else "null"
            connection = client.native_connection
            connection.register("elt_package_keys", keys)
            try:
                landed = connection.execute(
                    f"select {', '.join('raw.' + c for c in escaped)}, md5(raw.{client.escape_column_name(record)}),"
                    f" {cursor}"
                    f" from {qualified} as raw join elt_package_keys as package on {conditions}"
                ).fetchall()
            except duckdb.CatalogException:  # no such table yet
                return {}
            finally:
                connection.unregister("elt_package_keys")
        return {tuple(key): (str(digest), as_instant(cursor_at)) for *key, digest, cursor_at in landed}

    def dlt_destination(self) -> Any:
        settings = self.settings
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        credentials = DuckDbCredentials(
            str(settings.duckdb_path), global_config={"memory_limit": settings.duckdb_memory_limit}
        )
        return dlt.destinations.duckdb(credentials=credentials)
