"""The on-disk state of the three simulated source systems, under one simulation root folder.

- `root/app.db`    the shop's OLTP database (`app_db`): the contract's `customers` and `products` tables.
- `root/api.db`    the store behind the orders API (`shop_api`): every order version the service has.
- `root/payments/` the settlement-file drop folder (`payments_files`).

These are low-level primitives: values are stored as given, so a test can plant exactly the bad value it
wants to see handled. `world.generate` builds whole worlds with them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from loaders.landing.records import as_key
from loaders.simulate.timestamps import as_utc, normalise_timestamp, sqlite_timestamp
from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER

APP_DB_NAME = "app.db"
API_DB_NAME = "api.db"
PAYMENTS_DIR_NAME = "payments"
PAYMENTS_FILE_NAME = re.compile(r"payments_\d{8}_\d{2}\.csv")

CUSTOMER_COLUMNS: tuple[str, ...] = (
    "id",
    "email",
    "full_name",
    "country",
    "created_at",
    "updated_at",
    "deleted_at",
)
PRODUCT_COLUMNS: tuple[str, ...] = (
    "sku",
    "name",
    "category",
    "list_price",
    "currency",
    "active",
    "updated_at",
)

# The contract's DDL, verbatim. NUMERIC affinity means SQLite stores list_price '19.90' as the REAL 19.9 and
# '19.00' as the INTEGER 19: readers get a number back, not the two-place text that was inserted.
APP_DB_SCHEMA = """
create table if not exists customers (
    id text primary key, email text, full_name text, country text,
    created_at timestamp, updated_at timestamp, deleted_at timestamp null
);
create table if not exists products (
    sku text primary key, name text, category text, list_price numeric(12,2),
    currency text, active boolean, updated_at timestamp
);
"""

API_DB_TABLE = """
create table if not exists order_versions (
    seq integer primary key autoincrement,
    id text null,
    updated_at text null,
    body text not null
)
"""
API_DB_INDEXES: tuple[str, ...] = (
    "create index if not exists order_versions_updated_at_id on order_versions (updated_at, id)",
    "create index if not exists order_versions_id_seq on order_versions (id, seq)",  # latest version per id
)

# What an order body may be: a JSON object as a dict, any other JSON value, or JSON text stored verbatim.
OrderBody = Mapping[str, Any] | list[Any] | str


def _sql_value(value: Any) -> Any:
    """sqlite3 cannot bind Decimal or store datetimes in the contract's text form without help."""
    if isinstance(value, datetime):
        return sqlite_timestamp(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _upsert_sql(table: str, allowed: tuple[str, ...], fields: Iterable[str]) -> str:
    columns = list(fields)
    unknown = sorted(set(columns) - set(allowed))
    if unknown:
        raise ValueError(f"{table} has no column(s) {', '.join(unknown)}")
    placeholders = ", ".join(f":{column}" for column in columns)
    return f"insert or replace into {table} ({', '.join(columns)}) values ({placeholders})"


class AppDb:
    """The `app_db` SQLite file. Each method is its own transaction."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / APP_DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self.connect()) as conn:
            conn.executescript(APP_DB_SCHEMA)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL a loader is pointed at."""
        return f"sqlite:///{self.path.resolve()}"

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def upsert_customer(self, **fields: Any) -> None:
        """Insert or wholly replace one row; columns left out become NULL, values are stored as given."""
        self._upsert("customers", CUSTOMER_COLUMNS, [fields])

    def upsert_product(self, **fields: Any) -> None:
        self._upsert("products", PRODUCT_COLUMNS, [fields])

    def delete_customer_softly(self, customer_id: str, at: datetime | str) -> None:
        """Set `deleted_at` and bump `updated_at`, as the shop does: rows are never removed."""
        stamp = _sql_value(at)
        with closing(self.connect()) as conn, conn:
            conn.execute(
                "update customers set deleted_at = ?, updated_at = ? where id = ?",
                (stamp, stamp, customer_id),
            )

    def replace_all(self, customers: Iterable[Mapping[str, Any]], products: Iterable[Mapping[str, Any]]) -> None:
        """Make both tables hold exactly these rows, in one transaction (so a reader never sees half)."""
        with closing(self.connect()) as conn, conn:
            conn.execute("delete from customers")
            conn.execute("delete from products")
            conn.executemany(
                _upsert_sql("customers", CUSTOMER_COLUMNS, CUSTOMER_COLUMNS),
                ({c: _sql_value(row.get(c)) for c in CUSTOMER_COLUMNS} for row in customers),
            )
            conn.executemany(
                _upsert_sql("products", PRODUCT_COLUMNS, PRODUCT_COLUMNS),
                ({c: _sql_value(row.get(c)) for c in PRODUCT_COLUMNS} for row in products),
            )

    def _upsert(self, table: str, allowed: tuple[str, ...], rows: Sequence[Mapping[str, Any]]) -> None:
        with closing(self.connect()) as conn, conn:
            for row in rows:
                conn.execute(_upsert_sql(table, allowed, row), {k: _sql_value(v) for k, v in row.items()})


SortKey = tuple[str, str, int]
"""Where a served row sits in the API's order: (updated_at or '', id or '', seq)."""


@dataclass(frozen=True, slots=True)
class ServedRow:
    key: SortKey
    body: str


def _api_row(order: OrderBody) -> tuple[str | None, str | None, str]:
    """(id, updated_at, body text) for one version; the columns are NULL when the body does not say."""
    if isinstance(order, str):
        text = order
        value = json.loads(order)  # only JSON text can be embedded in the API's response
    else:
        text = json.dumps(order, separators=(",", ":"), ensure_ascii=False)
        value = order
    if not isinstance(value, Mapping):
        return None, None, text
    key = as_key(value.get("id"))  # the loaders' own reading of a natural key
    return key if isinstance(key, str) and key else None, normalise_timestamp(value.get("updated_at")), text


_INSERT_VERSION = "insert into order_versions (id, updated_at, body) values (?, ?, ?)"
_LATEST_OF_ITS_ID = "(v.id is null or v.seq = (select max(w.seq) from order_versions w where w.id = v.id))"
_PAGE_WITHOUT_UPDATED_AT = f"""
    select seq, coalesce(id, ''), body from order_versions v
    where updated_at is null and {_LATEST_OF_ITS_ID} and (coalesce(id, ''), seq) > (?, ?)
    order by coalesce(id, ''), seq
    limit ?
"""
# Rows with an id sort after rows without one (NULL sorts first in SQLite, as '' does), so ordering by the
# raw columns equals ordering by the coalesced ones, and the (updated_at, id) index (whose entries end in
# the rowid, i.e. seq) serves both the filter and the order.
_PAGE_WITH_UPDATED_AT = f"""
    select seq, updated_at, coalesce(id, ''), body from order_versions v
    where updated_at >= :low
      and (updated_at > :u
           or (updated_at = :u and (coalesce(id, '') > :i or (coalesce(id, '') = :i and seq > :s))))
      and {_LATEST_OF_ITS_ID}
    order by updated_at, id, seq
    limit :n
"""


class ApiStore:
    """`api.db`: the orders service's versions. The API serves, per id, the version added last."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / API_DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path)) as conn:
            # WAL lets the server keep reading the previous world while `generate` rewrites it.
            conn.execute("pragma journal_mode = wal")
            for statement in (API_DB_TABLE, *API_DB_INDEXES):
                conn.execute(statement)

    def add(self, order: OrderBody) -> int:
        """Append one version and return its seq. A str is stored verbatim and must be JSON text."""
        with closing(sqlite3.connect(self.path)) as conn, conn:
            cursor = conn.execute(_INSERT_VERSION, _api_row(order))
            return int(cursor.lastrowid or 0)

    def add_many(self, orders: Iterable[OrderBody]) -> None:
        with closing(sqlite3.connect(self.path)) as conn, conn:
            conn.executemany(_INSERT_VERSION, (_api_row(order) for order in orders))

    def clear(self) -> None:
        """Remove every version and restart seq at 1."""
        with closing(sqlite3.connect(self.path)) as conn, conn:
            _clear(conn)

    @contextmanager
    def rewriting(self) -> Iterator[Callable[[Iterable[OrderBody]], None]]:
        """Clear and refill the store in one transaction; yields `append(bodies)`.

        Readers (the server) keep seeing the previous content until the commit, thanks to WAL.
        """
        # Autocommit mode, so the DDL below is inside the explicit transaction rather than committed alone.
        with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("pragma synchronous = normal")
            conn.execute("begin immediate")
            try:
                # Indexing once at the end is much faster than maintaining two indexes row by row.
                conn.execute("drop index if exists order_versions_updated_at_id")
                conn.execute("drop index if exists order_versions_id_seq")
                _clear(conn)
                yield lambda bodies: conn.executemany(_INSERT_VERSION, (_api_row(body) for body in bodies))
                for statement in API_DB_INDEXES:
                    conn.execute(statement)
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")

    def page(self, since: str | None, limit: int, after: SortKey | None) -> tuple[list[ServedRow], bool]:
        """Up to `limit` served rows after `after`, and whether more follow.

        `since` is the normalised `updated_since` (inclusive); rows without a parseable `updated_at` sort
        first and are served whatever `since` says, since nothing tells the client they are old.
        """
        wanted = limit + 1  # one extra row tells whether there is a next page
        rows: list[ServedRow] = []
        with closing(sqlite3.connect(self.path, timeout=10)) as conn:
            conn.execute("pragma query_only = on")
            if after is None or after[0] == "":
                _, after_id, after_seq = after or ("", "", 0)
                for seq, order_id, body in conn.execute(_PAGE_WITHOUT_UPDATED_AT, (after_id, after_seq, wanted)):
                    rows.append(ServedRow(("", order_id, seq), body))
                after = ("", "", 0)
            if len(rows) < wanted:
                u, i, s = after
                params = {"low": max(since or "", u), "u": u, "i": i, "s": s, "n": wanted - len(rows)}
                for seq, updated_at, order_id, body in conn.execute(_PAGE_WITH_UPDATED_AT, params):
                    rows.append(ServedRow((updated_at, order_id, seq), body))
        return rows[:limit], len(rows) > limit


def _clear(conn: sqlite3.Connection) -> None:
    conn.execute("delete from order_versions")
    conn.execute("delete from sqlite_sequence where name = 'order_versions'")


PaymentsRow = Sequence[Any] | str
"""A CSV row: a sequence of field values, or a raw line written verbatim (how damaged rows are planted)."""


def payments_dir(root: Path) -> Path:
    return Path(root) / PAYMENTS_DIR_NAME


def render_payments_csv(rows: Iterable[PaymentsRow]) -> bytes:
    """The file's bytes: UTF-8, the contract's header, `\\n` line endings."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PAYMENT_CSV_HEADER)
    for row in rows:
        if isinstance(row, str):
            buffer.write(row + "\n")
        else:
            writer.writerow("" if value is None else value for value in row)
    return buffer.getvalue().encode("utf-8")


def deliver_file(path: Path, data: bytes, delivered_at: datetime) -> bool:
    """Make `path` hold `data` with mtime `delivered_at`; touch nothing that is already so. True if changed.

    The file appears atomically (written beside it, then renamed) so a loader never reads half a delivery;
    the temporary name does not end in `.csv`, so no loader picks it up.
    """
    mtime_ns = int(as_utc(delivered_at).timestamp()) * 1_000_000_000
    try:
        stat = path.stat()
        if stat.st_mtime_ns == mtime_ns and stat.st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(data)
    os.utime(partial, ns=(mtime_ns, mtime_ns))
    os.replace(partial, path)
    return True


def write_payments_file(root: Path, name: str, rows: Iterable[PaymentsRow], delivered_at: datetime) -> Path:
    """Deliver (or re-deliver: same name, later `delivered_at`) one settlement file into `root/payments`."""
    path = payments_dir(root) / name
    deliver_file(path, render_payments_csv(rows), delivered_at)
    return path


def remove_payments_files_except(root: Path, keep: set[str]) -> int:
    """Delete settlement files (by the contract's name pattern only) that are not in `keep`."""
    removed = 0
    folder = payments_dir(root)
    if folder.is_dir():
        for path in folder.iterdir():
            if PAYMENTS_FILE_NAME.fullmatch(path.name) and path.name not in keep:
                path.unlink()
                removed += 1
    return removed
