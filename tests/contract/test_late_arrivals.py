"""Contract 1.1 and 1.3: late versions, re-delivered files and late files all reach the canonical tables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.contract.records import assert_full_refresh_reproduces, customer, delivered, order, payment


def test_late_version_within_six_hours_is_not_missed(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1", updated_at="2024-03-01T12:00:00Z"))
    project.api_store.add(order("o2", updated_at="2024-03-01T18:00:00Z"))
    project.run()

    # served after the 18:00 version, although 5 h older: clock skew between the service's shards
    project.api_store.add(order("o3", updated_at="2024-03-01T13:00:00Z"))
    project.api_store.add(order("o1", updated_at="2024-03-01T12:30:00Z", status="shipped"))
    project.run(lookback_versions=0)

    orders = project.canonical("orders")
    assert set(orders) == {("o1",), ("o2",), ("o3",)}
    assert orders[("o1",)][2] == "shipped"
    assert_full_refresh_reproduces(project)


def test_redelivered_file_replaces_the_versions_it_corrects(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.deliver(
        "payments_20240301_01.csv", [payment("p1", amount="20.00"), payment("p2", amount="5.00")], delivered(2)
    )
    project.run()
    assert project.canonical("payments")[("p1",)][2] == Decimal("20.00")

    # same name, newer: p1 corrected without a new updated_at (same version, replaced), p2 refunded later
    project.deliver(
        "payments_20240301_01.csv",
        [
            payment("p1", amount="25.00"),
            payment("p2", amount="5.00", status="refunded", updated_at="2024-03-02T09:00:00Z"),
        ],
        delivered(3),
    )
    project.run(lookback_versions=0)

    payments = project.canonical("payments")
    assert payments[("p1",)][2] == Decimal("25.00")
    assert payments[("p2",)][5] == "refunded"
    # one version of p1, the correction (raw merged it, or Spark's lake keeps both deliveries: staging one)
    assert project.scalar("select count(*) from staging.stg_payments_files__payments where payment_id = 'p1'") == 1
    revenue = project.canonical("daily_revenue")
    assert revenue[(date(2024, 3, 1), "EUR")][2:] == (1, Decimal("25.00"), Decimal("5.00"), Decimal("20.00"))
    assert_full_refresh_reproduces(project)


def test_same_version_in_two_files_is_taken_from_the_file_delivered_last(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.deliver("payments_20240301_02.csv", [payment("p1", amount="30.00")], delivered(4))
    project.deliver("payments_20240301_01.csv", [payment("p1", amount="10.00")], delivered(2))
    project.run()

    assert project.canonical("payments")[("p1",)][2] == Decimal("30.00")


def test_late_file_changes_daily_revenue_of_an_old_date(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.api_store.add(order("o_usd", currency="USD"))
    project.deliver("payments_20240301_01.csv", [payment("p1")], delivered(2))
    project.deliver(
        "payments_20240220_01.csv",
        [payment("p4", order_id="o_usd", currency="USD", amount="7.00", paid_at="2024-02-20T10:00:00Z")],
        delivered(2),
    )
    project.run()
    assert project.canonical("daily_revenue")[(date(2024, 2, 20), "USD")][3] == Decimal("7.00")

    # days later: a file settling 15 February, and a correction moving p4 to 21 February
    project.deliver(
        "payments_20240215_01.csv",
        [payment("p3", amount="3.50", paid_at="2024-02-15T23:59:59Z", updated_at="2024-02-16T00:00:00Z")],
        delivered(10),
    )
    project.deliver(
        "payments_20240221_01.csv",
        [
            payment(
                "p4",
                order_id="o_usd",
                currency="USD",
                amount="7.00",
                paid_at="2024-02-21T10:00:00Z",
                updated_at="2024-03-05T00:00:00Z",
            )
        ],
        delivered(10),
    )
    project.run(lookback_versions=0)

    revenue = project.canonical("daily_revenue")
    assert revenue[(date(2024, 2, 15), "EUR")][2:] == (1, Decimal("3.50"), Decimal("0.00"), Decimal("3.50"))
    assert (date(2024, 2, 20), "USD") not in revenue
    assert revenue[(date(2024, 2, 21), "USD")][3] == Decimal("7.00")
    assert_full_refresh_reproduces(project)
