"""A version stamped in the future lands, but the incremental cursors ignore it: one order or customer
with `updated_at` in 2099 does not stop later versions of other keys from landing on later runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loaders.landing.batch import Batch
from loaders.sources.shop_api.records import Order
from tests.contract.records import customer, order
from tests.support.project import Project, land

pytestmark = pytest.mark.warehouses("postgres")

FUTURE = "2099-01-01T00:00:00Z"


def raw_versions(project: Project, table: str, key: str) -> set[tuple[str, str]]:
    return set(project.query(f"select {key}, _version from {table}"))


def test_a_future_version_lands_without_a_cursor_value() -> None:
    started = datetime(2024, 3, 2, tzinfo=UTC)
    batch = Batch("shop_api", "orders", Order, key="id", cursor_horizon=started + timedelta(minutes=5))
    batch.add(order("o_future", updated_at=FUTURE), "{}", "page 1 item 0", started, 1)
    batch.add(order("o_skewed", updated_at="2024-03-02T00:04:00Z"), "{}", "page 1 item 1", started, 2)
    batch.add(order("o1"), "{}", "page 1 item 2", started, 3)

    rows = {row["id"]: row for row in batch.pending_rows}
    assert rows["o_future"]["_version_at"] == datetime(2099, 1, 1, tzinfo=UTC)
    assert rows["o_future"]["_cursor_at"] is None
    assert rows["o_skewed"]["_cursor_at"] == datetime(2024, 3, 2, 0, 4, tzinfo=UTC)  # within the tolerance
    assert rows["o1"]["_cursor_at"] == rows["o1"]["_version_at"]


def test_an_order_stamped_in_2099_does_not_stop_later_orders(project) -> None:
    project.api_store.add_many([order("o1", updated_at="2024-03-01T12:00:00Z"), order("o_2099", updated_at=FUTURE)])
    land(project.settings, "shop_api")
    assert ("o_2099", FUTURE) in raw_versions(project, "raw_shop_api.orders", "id")

    for day in (2, 3):
        stamp = f"2024-03-0{day}T12:00:00Z"
        project.api_store.add_many([order(f"o{day}", updated_at=stamp), order("o1", updated_at=stamp)])
        land(project.settings, "shop_api")
        versions = raw_versions(project, "raw_shop_api.orders", "id")
        assert {(f"o{day}", stamp), ("o1", stamp)} <= versions

    assert project.scalar("select count(*) from raw_shop_api.orders where id = 'o_2099'") == 1


def test_a_customer_stamped_in_2099_does_not_stop_later_customers(project) -> None:
    project.app_db.upsert_customer(**customer("c1", updated_at="2024-03-01 09:00:00"))
    project.app_db.upsert_customer(**customer("c_2099", updated_at="2099-01-01 00:00:00"))
    land(project.settings, "app_db")
    assert ("c_2099", "2099-01-01 00:00:00") in raw_versions(project, "raw_app_db.customers", "id")

    for day in (2, 3):
        stamp = f"2024-03-0{day} 09:00:00"
        project.app_db.upsert_customer(**customer(f"c{day}", updated_at=stamp))
        project.app_db.upsert_customer(**customer("c1", updated_at=stamp, full_name=f"C1 day {day}"))
        land(project.settings, "app_db")
        versions = raw_versions(project, "raw_app_db.customers", "id")
        assert {(f"c{day}", stamp), ("c1", stamp)} <= versions

    assert project.scalar("select count(*) from raw_app_db.customers where id = 'c_2099'") == 1
