"""Contract 2.2 "late dimensions release", and its mirror: a cross-table rule judged anew when the other
table changes, although the waiting record itself did not."""

from __future__ import annotations

import pytest

from tests.contract.records import assert_full_refresh_reproduces, customer, delivered, order, payment

pytestmark = pytest.mark.warehouses("postgres")


def test_order_and_payment_waiting_for_a_late_customer_are_released(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.api_store.add(order("o_wait", customer_id="c_late"))
    project.deliver("payments_20240301_01.csv", [payment("p_wait", order_id="o_wait")], delivered(2))
    project.run()
    assert project.open_quarantine("orders") == {"o_wait": ("2024-03-01T12:00:00Z", "unknown_customer")}
    assert project.open_quarantine("payments") == {"p_wait": ("2024-03-01T12:30:00Z", "unknown_order")}

    # only the customer arrives; the order and the payment are not landed again, and nothing looks back
    project.app_db.upsert_customer(**customer("c_late", updated_at="2024-03-02 09:00:00"))
    project.load("app_db")
    project.build(lookback_versions=0)

    assert ("o_wait",) in project.canonical("orders")
    assert ("o_wait", 1) in project.canonical("order_items")
    assert ("p_wait",) in project.canonical("payments")
    assert project.open_quarantine("orders") == {}
    assert project.open_quarantine("payments") == {}
    assert project.query("select is_resolved from quarantine.orders where order_id = 'o_wait'") == [(True,)]
    assert_full_refresh_reproduces(project)


def test_payment_leaves_canonical_when_its_order_changes_currency(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.deliver("payments_20240301_01.csv", [payment("p1")], delivered(2))
    project.run()
    assert ("p1",) in project.canonical("payments")

    project.api_store.add(order("o1", updated_at="2024-03-01T15:00:00Z", currency="USD"))
    project.load("shop_api")
    project.build(lookback_versions=0)

    assert ("p1",) not in project.canonical("payments")
    assert project.open_quarantine("payments") == {"p1": ("2024-03-01T12:30:00Z", "currency_mismatch")}
    assert project.canonical("daily_revenue") == {}
    assert_full_refresh_reproduces(project)
