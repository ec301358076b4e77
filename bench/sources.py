"""The bench's sample sources: the project's simulator at a chosen scale, its API served by a process of
its own, and the 1 % change a later run loads.

The world is `loaders.simulate.generate` itself (no bench-only generator): `days` simulated days of
`orders / days` orders each, so one day is about 1 % of the orders. It writes the API store, the SQLite
app database and the settlement files day by day; what it keeps in memory is the live state of the shop
(every customer, the orders still open), not the history, so its peak RSS grows with the customers
(about 15 % of the orders here). `python -m bench.sources ROOT ORDERS DAYS` writes one world; the bench
runs it as a subprocess so that its memory is neither in the bench's process nor in the figures.

The change (`Change.apply`, undone by `Change.revert` so that every target starts from the same world):

- orders: a new version of every 100th order (1 %), the status moved on; half stamped after the newest
  version the API served so far, half *late* (stamped up to 5 h before it, inside the loader's 6 h
  re-read window, as the contract's shard skew allows);
- customers: every 100th customer of app.db renamed, `updated_at` after the world's end;
- payments: a new version of every 100th payment (refunded, or re-stated), in a new settlement file for
  the next day and, for a tenth of them, in a *late* file named for a settlement day three days back.
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loaders.core.timestamps import parse_timestamp
from loaders.simulate import ApiStore, SimulationConfig, day_start, iso_timestamp, sqlite_timestamp
from loaders.simulate import write_payments_file as deliver_payments
from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER

NEXT_STATUS = {"placed": "paid", "paid": "shipped", "shipped": "delivered"}
LATE_BEHIND = timedelta(hours=5)  # inside shop_api's 6 h re-read lag (loaders/sources/shop_api/settings.py)


def world_config(orders: int, days: int) -> SimulationConfig:
    """A world of `orders` orders over `days` days: 5 % of the customers exist before day 1, as many sign up
    over the days, and 5 % of the orders bring a late new customer (the simulator's default share)."""
    return SimulationConfig(
        customers=max(10, orders // 20),
        new_customers_per_day=max(1, orders // 20 // days),
        products=500,
        orders_per_day=max(1, orders // days),
    )


def generate_world(root: Path, orders: int, days: int) -> dict[str, Any]:
    from loaders.simulate import generate

    summary = generate(root, world_config(orders, days), through_day=days)
    return summary.model_dump()


def sources_env(root: Path, base_url: str, token: str) -> dict[str, str]:
    """The loaders' settings that point them at the world in `root`, its API served at `base_url`."""
    return {
        "SOURCES__SHOP_API__BASE_URL": base_url,
        "SOURCES__SHOP_API__TOKEN": token,
        "SOURCES__APP_DB__CREDENTIALS": f"sqlite:///{root / 'app.db'}",
        "SOURCES__PAYMENTS_FILES__BUCKET_URL": str(root / "payments"),
    }


def world_end(orders: int, days: int) -> datetime:
    return day_start(world_config(orders, days), days + 1)


# -- the API server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiProcess:
    """`elt simulate serve` on a world: the loader and the raw limit fetch from the same server, which
    runs in a process of its own so that neither shares a GIL with it and its CPU is counted apart."""

    def __init__(self, root: Path, token: str, env: dict[str, str]) -> None:
        self.root, self.token, self.env = root, token, env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiProcess:
        elt = str(Path(sys.executable).with_name("elt"))
        self.proc = subprocess.Popen(
            [elt, "simulate", "serve", "--root", str(self.root), "--port", str(self.port)],
            env={**self.env, "SOURCES__SHOP_API__TOKEN": self.token},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"elt simulate serve exited with {self.proc.returncode}") from None
                time.sleep(0.2)
        raise RuntimeError("elt simulate serve did not start listening within 60 s")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def cpu_s(self) -> float | None:
        from bench.measure import own_cpu

        return None if self.proc is None else own_cpu(self.proc.pid)


# -- the settlement files as the warehouse's CSV reader can take them ----------------------------------


def readable_payments_copy(payments: Path, into: Path) -> int:
    """A copy of the settlement files without the lines a CSV reader refuses (a wrong field count: the
    simulator's damaged rows, ~1 %); returns the rows kept. Not timed: it makes the raw limit measurable,
    since neither DuckDB's strict `read_csv` nor PostgreSQL 15's `COPY` skips such a line."""
    into.mkdir(parents=True, exist_ok=True)
    kept = 0
    for path in sorted(payments.glob("payments_*.csv")):
        with open(path, newline="", encoding="utf-8") as source, open(into / path.name, "w", newline="") as target:
            writer = csv.writer(target, lineterminator="\n")
            rows = csv.reader(source)
            writer.writerow(next(rows, PAYMENT_CSV_HEADER))
            for row in rows:
                if len(row) == len(PAYMENT_CSV_HEADER):
                    writer.writerow(row)
                    kept += 1
    return kept


# -- the 1 % change ------------------------------------------------------------------------------------


def hundredth(key: str | None) -> bool:
    """Every 100th key of the simulator's numbering (`o_000100`, `c_000200`, `p_000300`)."""
    digits = (key or "")[2:]
    return digits.isdigit() and int(digits) % 100 == 0


# the same choice in SQLite, on the `id` column (a key that is not numbered is never chosen)
EVERY_HUNDREDTH_SQL = (
    "id glob '?_[0-9]*' and substr(id, 3) not glob '*[^0-9]*' and cast(substr(id, 3) as integer) % 100 = 0"
)


@dataclass
class Change:
    root: Path
    end: datetime
    """The world's end (midnight after its last day): the change happens on the next day."""
    backup: Path
    mark: int = 0
    files: tuple[Path, ...] = ()

    def apply(self) -> dict[str, int]:
        """Make the change in the sources; returns what changed, per table."""
        with closing(sqlite3.connect(self.root / "api.db")) as conn:
            self.mark = int(conn.execute("select coalesce(max(seq), 0) from order_versions").fetchone()[0])
        shutil.copy2(self.root / "app.db", self.backup)
        counts = {"orders": self._orders(), "customers": self._customers()}
        counts["payments"], counts["late_file_payments"] = self._payments()
        return counts

    def revert(self) -> None:
        with closing(sqlite3.connect(self.root / "api.db")) as conn, conn:
            conn.execute("delete from order_versions where seq > ?", (self.mark,))
        shutil.copy2(self.backup, self.root / "app.db")
        for path in self.files:
            path.unlink(missing_ok=True)

    def _orders(self) -> int:
        with closing(sqlite3.connect(self.root / "api.db")) as conn:
            # SQLite gives the bare columns of the row that holds max(seq): each order's latest version
            latest = conn.execute(
                f"select body, max(seq) from order_versions where {EVERY_HUNDREDTH_SQL} group by id order by id"
            ).fetchall()
        bodies = []
        for n, (body, _) in enumerate(latest):
            try:
                order = json.loads(body)
            except ValueError:
                continue
            if not isinstance(order, dict):
                continue
            if n % 2:
                stamp = self.end - LATE_BEHIND + timedelta(seconds=n % 3600)  # late: behind the newest served
            else:
                stamp = self.end + timedelta(seconds=n % 3600)
            previous = parse_timestamp(order.get("updated_at"))  # None for a planted bad timestamp
            if previous is not None and previous.replace(tzinfo=None) >= stamp:
                stamp = previous.replace(tzinfo=None) + timedelta(seconds=1)
            order["status"] = NEXT_STATUS.get(str(order.get("status")), order.get("status"))
            order["updated_at"] = iso_timestamp(stamp)
            bodies.append(order)
        ApiStore(self.root).add_many(bodies)
        return len(bodies)

    def _customers(self) -> int:
        with closing(sqlite3.connect(self.root / "app.db")) as conn, conn:
            rows = conn.execute(f"select id from customers where {EVERY_HUNDREDTH_SQL} order by id").fetchall()
            chosen = [(sqlite_timestamp(self.end + timedelta(seconds=n)), key) for n, (key,) in enumerate(rows)]
            conn.executemany(
                "update customers set full_name = full_name || ' (moved)', updated_at = ? where id = ?", chosen
            )
        return len(chosen)

    def _payments(self) -> tuple[int, int]:
        changed: list[list[str]] = []
        for path in sorted((self.root / "payments").glob("payments_*.csv")):
            with open(path, newline="", encoding="utf-8") as lines:
                changed += (
                    row for row in csv.reader(lines) if len(row) == len(PAYMENT_CSV_HEADER) and hundredth(row[0])
                )
        status, updated = PAYMENT_CSV_HEADER.index("status"), PAYMENT_CSV_HEADER.index("updated_at")
        for n, row in enumerate(changed):
            row[status] = "refunded" if row[status] == "succeeded" else row[status]
            row[updated] = iso_timestamp(self.end + timedelta(hours=1, seconds=n))
        late = changed[::10]
        today = [row for n, row in enumerate(changed) if n % 10]
        late_day = (self.end - timedelta(days=3)).strftime("%Y%m%d")
        self.files = (
            deliver_payments(self.root, f"payments_{self.end:%Y%m%d}_01.csv", today, self.end + timedelta(hours=23)),
            deliver_payments(self.root, f"payments_{late_day}_90.csv", late, self.end + timedelta(hours=22)),
        )
        return len(changed), len(late)


def main(argv: list[str]) -> int:
    root, orders, days = Path(argv[0]), int(argv[1]), int(argv[2])
    print(json.dumps(generate_world(root, orders, days), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
