"""Spark for the tests: local Thrift servers (loaders/warehouse/spark_server.py) started once per test session, the
first when a test first asks for one; a test gets a server emptied of every schema the one before it made."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType

from loaders.core.settings import Settings
from loaders.warehouse import connect
from loaders.warehouse.spark_server import local_thrift_server


class SparkServers:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stack = contextlib.ExitStack()
        self._servers: dict[int, dict[str, str]] = {}

    def __enter__(self) -> SparkServers:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._stack.close()

    def emptied(self, slot: int = 0) -> dict[str, str]:
        """The ELT_SPARK_* variables of server `slot`, after dropping every schema but `default`."""
        if slot not in self._servers:
            self._servers[slot] = self._stack.enter_context(local_thrift_server(self.folder / f"server-{slot}"))
        env = self._servers[slot]
        settings = Settings.from_env({**env, "ELT_TARGET": "spark"})
        with connect(settings, read_only=False) as conn:
            cursor = conn.cursor()
            cursor.execute("show databases")
            for (schema,) in cursor.fetchall():
                if schema != "default":
                    cursor.execute(f"drop database {schema} cascade")
        return env
