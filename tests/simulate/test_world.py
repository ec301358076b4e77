"""The simulated world is a function of (config, day), and each knob does what the contract needs it to.

Rules are re-checked here from the data itself, with the contract's own wording, not with the simulator's
labels: a test of the simulator must not trust the simulator.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import time
from collections import defaultdict
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

from loaders.simulate import (
    ApiStore,
    AppDb,
    SimulationConfig,
    WorldSummary,
    generate,
    payments_dir,
    write_payments_file,
)
from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER, Payment
from loaders.sources.shop_api.records import Order

QUIET = {"invalid_rate": 0.0, "damaged_rate": 0.0}
START = datetime(2024, 3, 1, tzinfo=UTC)

# Reference data as the contract defines it (a subset of ISO 3166-1 / ISO 4217 large enough for the shop).
COUNTRIES = {
    "AT",
    "BE",
    "CH",
    "DE",
    "DK",
    "ES",
    "FI",
    "FR",
    "GB",
    "IE",
    "IT",
    "NL",
    "NO",
    "PL",
    "PT",
    "SE",
    "US",
}
CURRENCIES = {"CHF", "DKK", "EUR", "GBP", "NOK", "PLN", "SEK", "USD"}
ORDER_STATUSES = {"placed", "paid", "shipped", "delivered", "cancelled", "refunded"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# -- reading a root back --------------------------------------------------------------------------------


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def app_rows(root: Path, table: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(root / "app.db")) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"select * from {table} order by 1")]


def api_versions(root: Path) -> list[tuple[int, str | None, str | None, Any]]:
    """(seq, id, updated_at, parsed body) in seq order."""
    return [
        (seq, order_id, updated_at, json.loads(body))
        for seq, order_id, updated_at, body in _rows(root / "api.db", "select * from order_versions order by seq")
    ]


def payment_files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(payments_dir(root).glob("*.csv"))}


def payment_lines(root: Path) -> dict[str, list[list[str]]]:
    """File name -> data rows (header checked and dropped)."""
    parsed = {}
    for name, (data, _) in payment_files(root).items():
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        assert tuple(rows[0]) == PAYMENT_CSV_HEADER
        parsed[name] = rows[1:]
    return parsed


def snapshot(root: Path) -> dict[str, Any]:
    return {
        "customers": _rows(root / "app.db", "select * from customers order by id"),
        "products": _rows(root / "app.db", "select * from products order by sku"),
        "versions": _rows(root / "api.db", "select * from order_versions order by seq"),
        "files": payment_files(root),
    }


def latest_orders(root: Path) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for _, order_id, _, body in api_versions(root):
        if order_id is not None:
            latest[order_id] = body
    return latest


# -- the contract's rules, restated -----------------------------------------------------------------------


def _timestamp(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _decimal(value: Any) -> Decimal | None:
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def _two_places(value: Decimal) -> bool:
    return value == value.quantize(Decimal("0.01"))


def _bad_item(item: Any) -> bool:
    if not isinstance(item, dict) or not item.get("sku"):
        return True
    quantity, price = _decimal(item.get("quantity")), _decimal(item.get("unit_price"))
    if quantity is None or quantity <= 0 or quantity != quantity.to_integral_value():
        return True
    return price is None or price < 0 or not _two_places(price)


def _created_after_updated(record: dict[str, Any]) -> bool:
    created, updated = _timestamp(record.get("created_at")), _timestamp(record.get("updated_at"))
    return created is not None and updated is not None and updated < created


def customer_rules(row: dict[str, Any]) -> set[str]:
    broken = set()
    if not EMAIL.match(row["email"] or ""):
        broken.add("invalid_email")
    if row["country"] not in COUNTRIES:
        broken.add("unknown_country")
    if _created_after_updated(row):
        broken.add("updated_before_created")
    return broken


def product_rules(row: dict[str, Any]) -> set[str]:
    broken = set()
    if row["list_price"] is None or row["list_price"] < 0:
        broken.add("bad_price")
    if row["currency"] not in CURRENCIES:
        broken.add("unknown_currency")
    return broken


def order_rules(body: dict[str, Any], customers: set[str]) -> set[str]:
    broken = set()
    if body.get("currency") not in CURRENCIES:
        broken.add("unknown_currency")
    if body.get("status") not in ORDER_STATUSES:
        broken.add("invalid_status")
    if body.get("customer_id") not in customers:
        broken.add("unknown_customer")
    if body.get("shipping_country") not in COUNTRIES:
        broken.add("unknown_country")
    items = body.get("items")
    if not items:
        broken.add("no_items")
    elif any(_bad_item(item) for item in items):
        broken.add("bad_item")
    if _created_after_updated(body):
        broken.add("updated_before_created")
    if _timestamp(body.get("created_at")) is None or _timestamp(body.get("updated_at")) is None:
        broken.add("bad_timestamp")
    return broken


def payment_rules(row: dict[str, str], orders: dict[str, dict[str, Any]]) -> set[str]:
    broken = set()
    amount = _decimal(row["amount"])
    if amount is None or amount <= 0 or not _two_places(amount):
        broken.add("bad_amount")
    if _timestamp(row["paid_at"]) is None or _timestamp(row["updated_at"]) is None:
        broken.add("bad_timestamp")
    if row["status"] not in {"succeeded", "failed", "refunded"}:
        broken.add("invalid_status")
    if row["method"] not in {"card", "bank_transfer", "wallet"}:
        broken.add("invalid_method")
    if row["currency"] not in CURRENCIES:
        broken.add("unknown_currency")
    order = orders.get(row["order_id"])
    if order is None:
        broken.add("unknown_order")
    elif order.get("currency") in CURRENCIES and row["currency"] != order["currency"]:
        broken.add("currency_mismatch")
    return broken


def broken_rules(root: Path) -> set[str]:
    """Every `<table>.<rule>` some landable record in the root breaks."""
    customers = app_rows(root, "customers")
    customer_ids = {row["id"] for row in customers}
    found = {f"customers.{rule}" for row in customers for rule in customer_rules(row)}
    found |= {f"products.{rule}" for row in app_rows(root, "products") for rule in product_rules(row)}
    for _, order_id, _, body in api_versions(root):
        if order_id is not None:
            found |= {f"orders.{rule}" for rule in order_rules(body, customer_ids)}
    orders = latest_orders(root)
    for rows in payment_lines(root).values():
        for row in rows:
            if len(row) == len(PAYMENT_CSV_HEADER) and row[0]:
                found |= {
                    f"payments.{rule}"
                    for rule in payment_rules(dict(zip(PAYMENT_CSV_HEADER, row, strict=True)), orders)
                }
    return found


# -- determinism -------------------------------------------------------------------------------------------


def test_the_same_config_and_day_make_byte_identical_worlds(tmp_path: Path) -> None:
    config = SimulationConfig(redelivery_rate=0.5, late_file_rate=0.3)
    first = generate(tmp_path / "a", config, through_day=5)
    second = generate(tmp_path / "b", config, through_day=5)
    assert first == second
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    generate(tmp_path / "c", config.model_copy(update={"seed": 8}), through_day=5)
    assert snapshot(tmp_path / "c") != snapshot(tmp_path / "a")


def test_generating_day_by_day_equals_generating_at_once_and_leaves_unchanged_files_alone(
    tmp_path: Path,
) -> None:
    config = SimulationConfig(redelivery_rate=0.5, late_file_rate=0.3)
    stepwise, fresh = tmp_path / "stepwise", tmp_path / "fresh"
    generate(stepwise, config, through_day=3)
    before = {p.name: (p.stat().st_ctime_ns, p.stat().st_ino) for p in payments_dir(stepwise).glob("*.csv")}
    contents_before = payment_files(stepwise)
    time.sleep(0.05)  # past the filesystem's timestamp granularity, so a rewrite would show in ctime
    generate(stepwise, config, through_day=4)
    generate(fresh, config, through_day=4)
    assert snapshot(stepwise) == snapshot(fresh)

    unchanged = [name for name, state in contents_before.items() if payment_files(stepwise).get(name) == state]
    assert unchanged, "some day-1..3 files should be final by day 3"
    for name in unchanged:
        path = payments_dir(stepwise) / name
        assert (path.stat().st_ctime_ns, path.stat().st_ino) == before[name], f"{name} was rewritten"


def test_going_back_a_day_gives_that_day_s_world(tmp_path: Path) -> None:
    config = SimulationConfig(redelivery_rate=0.5, late_file_rate=0.3)
    generate(tmp_path / "back", config, through_day=4)
    generate(tmp_path / "back", config, through_day=2)
    generate(tmp_path / "fresh", config, through_day=2)
    assert snapshot(tmp_path / "back") == snapshot(tmp_path / "fresh")


def test_a_week_of_the_default_world_takes_well_under_two_seconds(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate(tmp_path, SimulationConfig(), through_day=7)
    assert time.perf_counter() - started < 2.0
    assert summary.orders == 7 * 40


def test_the_summary_counts_what_is_in_the_root(tmp_path: Path) -> None:
    summary = generate(tmp_path, SimulationConfig(damaged_rate=0.05), through_day=4)
    lines = payment_lines(tmp_path)
    versions = api_versions(tmp_path)
    damaged_lines = sum(len(row) != len(PAYMENT_CSV_HEADER) or not row[0] for rows in lines.values() for row in rows)
    damaged_versions = sum(order_id is None for _, order_id, _, _ in versions)
    assert summary == WorldSummary.model_validate(
        summary.model_dump()
        | {
            "customers": len(app_rows(tmp_path, "customers")),
            "products": 20,
            "order_versions": len(versions),
            "files": len(lines),
            "payment_rows": sum(len(rows) for rows in lines.values()),
            "damaged_rows": damaged_lines + damaged_versions,
        }
    )
    # An order whose only version so far is damaged has no id to count by.
    assert summary.orders == 160 >= len({order_id for _, order_id, _, _ in versions if order_id}) > 150
    assert summary.files + summary.files_pending == 4 * 2


# -- the knobs --------------------------------------------------------------------------------------------


def test_without_damage_every_record_is_landable(tmp_path: Path) -> None:
    summary = generate(tmp_path, SimulationConfig(damaged_rate=0.0, invalid_rate=0.3), through_day=4)
    assert summary.damaged_rows == 0
    for _, _, _, body in api_versions(tmp_path):
        assert isinstance(body, dict)
        Order(**body)
    for rows in payment_lines(tmp_path).values():
        for row in rows:
            assert len(row) == len(PAYMENT_CSV_HEADER)
            Payment(**dict(zip(PAYMENT_CSV_HEADER, row, strict=True)))


def test_damage_makes_records_unlandable_in_every_contract_way(tmp_path: Path) -> None:
    summary = generate(tmp_path, SimulationConfig(damaged_rate=0.2), through_day=4)
    bodies = [body for _, order_id, _, body in api_versions(tmp_path) if order_id is None]
    assert any(isinstance(body, dict) and "id" not in body for body in bodies)
    assert any(not isinstance(body, dict) for body in bodies)
    rows = [row for rows in payment_lines(tmp_path).values() for row in rows]
    assert any(len(row) != len(PAYMENT_CSV_HEADER) for row in rows)
    assert any(len(row) == len(PAYMENT_CSV_HEADER) and row[0] == "" for row in rows)
    assert summary.damaged_rows > 0


def test_without_invalid_records_every_record_passes_every_rule(tmp_path: Path) -> None:
    generate(tmp_path, SimulationConfig(invalid_rate=0.0, late_dimension_rate=0.0), through_day=5)
    assert broken_rules(tmp_path) == set()


def test_invalid_records_break_many_different_rules(tmp_path: Path) -> None:
    summary = generate(tmp_path, SimulationConfig(invalid_rate=0.3, late_dimension_rate=0.0), through_day=5)
    found = broken_rules(tmp_path)
    assert {
        "customers.invalid_email",
        "customers.unknown_country",
        "products.bad_price",
        "orders.invalid_status",
        "orders.no_items",
        "orders.bad_item",
        "orders.unknown_currency",
        "orders.updated_before_created",
        "orders.bad_timestamp",
        "payments.bad_amount",
        "payments.invalid_method",
        "payments.unknown_order",
        "payments.currency_mismatch",
    } <= found
    assert len(found) >= 18
    assert set(summary.invalid_by_rule) <= found  # the summary's labels are rules the data really breaks


def _new_versions_by_day(config: SimulationConfig, root: Path, days: int) -> dict[int, list[tuple[Any, ...]]]:
    """Day -> the api.db rows first visible that day; also checks earlier rows never change."""
    seen: list[tuple[Any, ...]] = []
    by_day = {}
    for day in range(1, days + 1):
        generate(root, config, through_day=day)
        rows = _rows(root / "api.db", "select * from order_versions order by seq")
        assert rows[: len(seen)] == seen
        by_day[day], seen = rows[len(seen) :], rows
    return by_day


def test_late_versions_lag_at_most_six_hours_and_become_visible_later(tmp_path: Path) -> None:
    config = SimulationConfig(late_version_rate=1.0, **QUIET)
    crossed = 0
    for day, rows in _new_versions_by_day(config, tmp_path / "late", 4).items():
        opens = START + timedelta(days=day - 1)
        for _, _, updated_at, _ in rows:
            stamp = _timestamp(updated_at)
            assert stamp is not None
            assert opens - timedelta(hours=6) <= stamp < opens + timedelta(days=1)
            crossed += stamp < opens  # dated an earlier day, visible only today
    assert crossed > 0

    punctual = SimulationConfig(late_version_rate=0.0, **QUIET)
    for day, rows in _new_versions_by_day(punctual, tmp_path / "punctual", 3).items():
        assert all(_timestamp(r[2]) >= START + timedelta(days=day - 1) for r in rows)  # type: ignore[operator]


def test_an_order_s_versions_never_go_back_in_time(tmp_path: Path) -> None:
    generate(tmp_path, SimulationConfig(late_version_rate=1.0, **QUIET), through_day=4)
    last: dict[str, str] = {}
    for _, order_id, updated_at, _ in api_versions(tmp_path):
        assert order_id is not None and updated_at is not None
        assert updated_at > last.get(order_id, "")
        last[order_id] = updated_at


def test_redelivered_files_come_later_with_corrections(tmp_path: Path) -> None:
    config = SimulationConfig(redelivery_rate=1.0, late_file_rate=0.0, **QUIET)
    generate(tmp_path, config, through_day=1)
    first = payment_files(tmp_path)
    first_rows = payment_lines(tmp_path)
    assert sorted(first) == ["payments_20240301_01.csv", "payments_20240301_02.csv"]
    generate(tmp_path, config, through_day=2)
    second = payment_files(tmp_path)
    second_rows = payment_lines(tmp_path)
    bumped = same_version = 0
    for name, (data, mtime) in first.items():
        assert second[name][1] > mtime
        assert second[name][0] != data
        before = {row[0]: row for row in first_rows[name]}
        for row in second_rows[name]:
            old = before[row[0]]
            if old != row:
                bumped += row[7] > old[7]
                same_version += row[7] == old[7]
    assert bumped > 0 and same_version > 0


def test_late_files_arrive_one_to_three_days_after_their_day(tmp_path: Path) -> None:
    config = SimulationConfig(late_file_rate=1.0, redelivery_rate=0.0)
    summary = generate(tmp_path, config, through_day=1)
    assert payment_files(tmp_path) == {}
    assert summary.files_pending == 2
    generate(tmp_path, config, through_day=4)
    for name, (_, mtime_ns) in payment_files(tmp_path).items():
        settled = datetime.strptime(name[9:17], "%Y%m%d").replace(tzinfo=UTC)
        delivered = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
        assert settled + timedelta(days=1) <= delivered < settled + timedelta(days=4)


def test_late_dimension_customers_reach_app_db_the_next_day(tmp_path: Path) -> None:
    config = SimulationConfig(late_dimension_rate=0.5, **QUIET)
    generate(tmp_path, config, through_day=1)
    customers = {row["id"] for row in app_rows(tmp_path, "customers")}
    missing = {body["customer_id"] for body in latest_orders(tmp_path).values()} - customers
    assert missing
    generate(tmp_path, config, through_day=2)
    arrived = {row["id"]: row for row in app_rows(tmp_path, "customers")}
    assert missing <= set(arrived)
    # A catch-up insert carries the day it arrived as updated_at, so an incremental extract sees it.
    assert all(arrived[c]["updated_at"] >= "2024-03-02" for c in missing)

    generate(tmp_path, config.model_copy(update={"late_dimension_rate": 0.0}), through_day=1)
    customers = {row["id"] for row in app_rows(tmp_path, "customers")}
    assert {body["customer_id"] for body in latest_orders(tmp_path).values()} <= customers


def test_payments_settle_the_orders_the_api_serves(tmp_path: Path) -> None:
    config = SimulationConfig(redelivery_rate=0.0, late_file_rate=0.0, **QUIET)
    generate(tmp_path, config, through_day=5)
    orders = latest_orders(tmp_path)
    by_payment: dict[str, list[dict[str, str]]] = defaultdict(list)
    paid: dict[str, set[str]] = defaultdict(set)
    for rows in payment_lines(tmp_path).values():
        for row in rows:
            payment = dict(zip(PAYMENT_CSV_HEADER, row, strict=True))
            by_payment[payment["payment_id"]].append(payment)
            order = orders[payment["order_id"]]
            total = sum(Decimal(str(i["quantity"])) * Decimal(str(i["unit_price"])) for i in order["items"])
            assert Decimal(payment["amount"]) == total
            assert payment["currency"] == order["currency"]
            paid[payment["order_id"]].add(payment["status"])
    for versions in by_payment.values():
        versions.sort(key=lambda p: p["updated_at"])
        assert [p["status"] for p in versions] in (["succeeded"], ["failed"], ["succeeded", "refunded"])
    for order_id, order in orders.items():
        if order["status"] in {"paid", "shipped", "delivered"}:
            assert "succeeded" in paid[order_id]
        if order["status"] == "refunded":
            assert "refunded" in paid[order_id]
        if order["status"] in {"placed", "cancelled"}:
            assert paid[order_id] <= {"failed"}


def test_api_bodies_vary_as_the_contract_warns(tmp_path: Path) -> None:
    generate(tmp_path, SimulationConfig(), through_day=4)
    bodies = [body for _, order_id, _, body in api_versions(tmp_path) if order_id]
    quantities = [item["quantity"] for body in bodies for item in body["items"] or []]
    assert any(isinstance(q, str) for q in quantities) and any(isinstance(q, int) for q in quantities)
    contract_fields = {
        "id",
        "customer_id",
        "status",
        "currency",
        "shipping_country",
        "created_at",
        "updated_at",
    }
    assert any(set(body) - contract_fields - {"items"} for body in bodies)
    timestamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert all(timestamp.match(body["updated_at"]) for body in bodies if body["updated_at"] != "not-a-date")


@pytest.mark.parametrize(
    ("knob", "value"),
    [("customers", -1), ("update_rate", 1.5), ("files_per_day", 0), ("files_per_day", 100)],
)
def test_nonsense_knobs_are_refused(knob: str, value: Any) -> None:
    with pytest.raises(ValueError, match=knob):
        SimulationConfig(**{knob: value})


def test_day_zero_is_the_world_before_the_first_day(tmp_path: Path) -> None:
    summary = generate(tmp_path, SimulationConfig(), through_day=0)
    assert (summary.customers, summary.products, summary.orders, summary.files) == (50, 20, 0, 0)
    assert all(row["created_at"] < "2024-03-01" for row in app_rows(tmp_path, "customers"))


# -- the store primitives other tests plant scenarios with ---------------------------------------------------


def test_app_db_stores_values_as_given_and_deletes_softly(tmp_path: Path) -> None:
    app = AppDb(tmp_path)
    app.upsert_customer(id="c_1", email="a@b.co", country="DE", created_at="not-a-date", updated_at=START)
    app.upsert_product(sku="SKU-1", list_price="-1.50", currency="EUR", active=True, updated_at="2024-03-01 10:00:00")
    app.delete_customer_softly("c_1", START + timedelta(hours=2))
    (customer,) = app_rows(tmp_path, "customers")
    assert customer["created_at"] == "not-a-date"
    assert customer["deleted_at"] == customer["updated_at"] == "2024-03-01 02:00:00"
    (product,) = app_rows(tmp_path, "products")
    assert (product["list_price"], product["active"]) == (
        -1.5,
        1,
    )  # NUMERIC affinity: '-1.50' reads back as REAL
    with pytest.raises(ValueError, match="no column"):
        app.upsert_customer(id="c_2", nickname="x")


def test_payments_files_take_raw_lines_verbatim_and_their_delivery_time_as_mtime(tmp_path: Path) -> None:
    rows = [("p_1", "o_1", "19.90", "EUR", "card", "succeeded", "2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z")]
    path = write_payments_file(tmp_path, "payments_20240301_01.csv", [*rows, "p_2,o_2,1.00"], START)
    assert path.read_bytes() == (
        b"payment_id,order_id,amount,currency,method,status,paid_at,updated_at\n"
        b"p_1,o_1,19.90,EUR,card,succeeded,2024-03-01T10:00:00Z,2024-03-01T10:00:00Z\n"
        b"p_2,o_2,1.00\n"
    )
    assert path.stat().st_mtime == START.timestamp()
    write_payments_file(tmp_path, "payments_20240301_01.csv", rows, START + timedelta(days=1))
    assert path.stat().st_mtime == (START + timedelta(days=1)).timestamp()
    assert [p.name for p in payments_dir(tmp_path).iterdir()] == ["payments_20240301_01.csv"]


def test_api_store_extracts_id_and_updated_at_and_restarts_seq_when_cleared(tmp_path: Path) -> None:
    store = ApiStore(tmp_path)
    assert store.add({"id": "o_1", "updated_at": "2024-03-01T10:00:00+00:00"}) == 1
    assert store.add({"id": 7, "updated_at": "not-a-date"}) == 2
    assert store.add('["not", "an", "object"]') == 3
    with pytest.raises(ValueError):
        store.add("{not json")
    assert [(seq, i, u) for seq, i, u, _ in api_versions(tmp_path)] == [
        (1, "o_1", "2024-03-01T10:00:00Z"),
        (2, "7", None),
        (3, None, None),
    ]
    store.clear()
    assert store.add({"id": "o_2"}) == 1
