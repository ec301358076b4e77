"""Write the simulated world as it stands after a given day into a simulation root folder.

`generate` is a function of (config, through_day): whatever the root held before, it leaves the same
app.db rows, api.db rows and settlement files (bytes and mtimes) as a run on an empty root. Settlement
files that are already as they should be are not touched, so their mtimes say when they were delivered,
not when the simulator last ran.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from loaders.simulate.config import SimulationConfig
from loaders.simulate.stores import (
    ApiStore,
    AppDb,
    deliver_file,
    payments_dir,
    remove_payments_files_except,
    render_payments_csv,
)
from loaders.simulate.timeline import Day, Delivery, Emitted, OrderVersion, Timeline, day_start

WORLD_FILE = "world.json"  # the last generation's summary, in the root


class WorldSummary(BaseModel):
    """What `generate` left in the root (counts of what is there now, not of everything ever drawn)."""

    model_config = ConfigDict(frozen=True)

    through_day: int
    customers: int
    """app_db rows (late customers not yet arrived are not counted)."""
    products: int
    orders: int
    """Orders placed through the day (each has at least one stored version)."""
    order_versions: int
    late_versions: int
    payment_rows: int
    """Data rows in the settlement files as they are now (damaged ones included)."""
    files: int
    files_pending: int
    """Files settling days up to `through_day` that have not been delivered yet."""
    late_files: int
    redelivered_files: int
    damaged_rows: int
    """Unlandable records: damaged CSV rows plus API versions without an id or not an object."""
    invalid_records: int
    """Records with a planted contract violation, across all four tables."""
    invalid_by_rule: dict[str, int]
    """`<table>.<reason code>` -> count, for the records in `invalid_records`."""


class _Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()

    def record(self, kind: str, rule: str | None, damaged: bool) -> None:
        self.counts[kind] += 1
        if rule is not None:
            self.rules[rule] += 1
        if damaged:
            self.counts["damaged"] += 1

    def rows(self, kind: str, emitted: Iterable[Emitted[dict[str, object]]]) -> Iterator[dict[str, object]]:
        for row in emitted:
            self.record(kind, row.rule, row.damaged)
            yield row.value

    def versions(self, versions: list[OrderVersion]) -> Iterator[dict[str, object] | str]:
        for version in versions:
            self.record("order_versions", version.rule, version.damaged)
            self.counts["late_versions"] += version.late
            yield version.body

    def delivery(self, delivery: Delivery) -> None:
        self.counts["files"] += 1
        self.counts["late_files"] += delivery.late
        self.counts["redelivered_files"] += delivery.redelivery
        for row in delivery.rows:
            self.record("payment_rows", row.rule, row.damaged)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while the world is built.

    The world holds millions of live objects and no cycles; every full collection would walk them all again,
    which makes generation quadratic in practice. Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def generate(root: Path, config: SimulationConfig, through_day: int) -> WorldSummary:
    """Make `root` hold the three sources as they are at the end of day `through_day` (day 1 = start_date).

    api.db holds every version visible by then, in visibility order (so `seq` order is visibility order);
    app.db the rows as they are then; `root/payments` the files delivered by then, with their latest
    delivery's content and its delivery time as mtime. Day 0 is the world before the first day.
    """
    if through_day < 0:
        raise ValueError("through_day must be >= 0")
    root = Path(root)
    payments_dir(root).mkdir(parents=True, exist_ok=True)  # loaders are pointed at it even when empty
    timeline, tally = Timeline(config), _Tally()
    now = day_start(config, through_day + 1)
    delivered: set[str] = set()
    with _without_cyclic_gc(), ApiStore(root).rewriting() as append:
        for _ in range(through_day):
            day: Day = timeline.next_day()
            append(tally.versions(day.order_versions))
            for file in day.files:
                delivery = file.as_of(now)
                if delivery is None:
                    tally.counts["files_pending"] += 1
                    continue
                tally.delivery(delivery)
                data = render_payments_csv(row.value for row in delivery.rows)
                deliver_file(payments_dir(root) / file.name, data, delivery.delivered_at)
                delivered.add(file.name)
    remove_payments_files_except(root, keep=delivered)
    AppDb(root).replace_all(
        customers=tally.rows("customers", timeline.customer_rows(through_day)),
        products=tally.rows("products", timeline.product_rows()),
    )
    counts = tally.counts
    summary = WorldSummary(
        through_day=through_day,
        customers=counts["customers"],
        products=counts["products"],
        orders=timeline.orders_created,
        order_versions=counts["order_versions"],
        late_versions=counts["late_versions"],
        payment_rows=counts["payment_rows"],
        files=counts["files"],
        files_pending=counts["files_pending"],
        late_files=counts["late_files"],
        redelivered_files=counts["redelivered_files"],
        damaged_rows=counts["damaged"],
        invalid_records=sum(tally.rules.values()),
        invalid_by_rule=dict(sorted(tally.rules.items())),
    )
    (root / WORLD_FILE).write_text(summary.model_dump_json(indent=2))
    return summary


def generated_day(root: Path) -> int | None:
    """The day the world in `root` was last generated through (None: never generated there)."""
    path = Path(root) / WORLD_FILE
    return WorldSummary.model_validate_json(path.read_text()).through_day if path.exists() else None
