"""A reader of the warehouse in its own PostgreSQL connection, counting the rows of tables in a loop (every
~20 ms) while something else rebuilds them; every read is kept: when, what it saw, which table it read."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from loaders.core.settings import Settings


@dataclass(frozen=True)
class Read:
    table: str
    started: float  # time.time()
    finished: float
    rows: int | None  # None: the read failed
    relation: int | None  # the oid of the table it read (tableoid); None when empty or failed
    error: str | None = None


def connect_kwargs(settings: Settings, user: str | None = None, password: str | None = None) -> dict[str, Any]:
    pg = settings.postgres
    return {
        "host": pg.host,
        "port": pg.port,
        "user": user or pg.user,
        "password": password if password is not None else pg.password.get_secret_value(),
        "dbname": pg.dbname,
    }


@dataclass
class ReaderLoop:
    """`with ReaderLoop(connect_kwargs(settings), ["analytics.orders"]) as reader: ...` then `reader.reads`."""

    connection: dict[str, Any]
    tables: list[str]
    interval: float = 0.02
    reads: list[Read] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _failure: BaseException | None = None

    def __enter__(self) -> ReaderLoop:
        import psycopg2

        # connected here, so a reader that cannot even log in fails the test at once
        self._conn = psycopg2.connect(**self.connection, connect_timeout=10)
        self._conn.autocommit = True  # every read is its own statement and snapshot
        self._thread = threading.Thread(target=self._loop, name="reader-loop", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)
        self._conn.close()
        if self._failure is not None:
            raise self._failure

    def _loop(self) -> None:
        try:
            cursor = self._conn.cursor()
            while not self._stop.is_set():
                for table in self.tables:
                    self.reads.append(self._read(cursor, table))
                time.sleep(self.interval)
        except BaseException as exc:  # surfaced by __exit__
            self._failure = exc

    @staticmethod
    def _read(cursor: Any, table: str) -> Read:
        import psycopg2

        started = time.time()
        try:
            cursor.execute(f"select tableoid::bigint, count(*) from {table} group by tableoid")
            found = cursor.fetchall()
        except psycopg2.Error as exc:
            message = (exc.pgerror or str(exc)).strip().splitlines()[0]
            return Read(table, started, time.time(), None, None, message)
        rows = sum(int(count) for _, count in found)
        relation = int(found[0][0]) if len(found) == 1 else None
        return Read(table, started, time.time(), rows, relation)

    # -- what it saw ---------------------------------------------------------------------------------
    def of(self, table: str) -> list[Read]:
        return [read for read in self.reads if read.table == table]

    def failed(self) -> list[Read]:
        return [read for read in self.reads if read.error is not None]

    def empty(self) -> list[Read]:
        return [read for read in self.reads if read.rows == 0]

    def during(self, table: str, started: float, finished: float) -> list[Read]:
        """Reads of `table` that were under way at some moment between `started` and `finished`."""
        return [read for read in self.of(table) if read.started <= finished and read.finished >= started]
