"""Contract 2.1/2.2 "last good": a valid version followed by an invalid one leaves the valid one canonical
and the invalid one open in quarantine; a later valid version resolves it."""

from __future__ import annotations

from decimal import Decimal

from tests.contract.records import assert_full_refresh_reproduces, customer, order


def test_invalid_update_keeps_last_good_version_and_opens_quarantine(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1"))
    project.run()
    assert project.canonical("orders")[("o1",)][2] == "paid"

    other_items = [{"line": 1, "sku": "SKU-9", "quantity": 1, "unit_price": "99.00"}]
    project.api_store.add(order("o1", updated_at="2024-03-01T14:00:00Z", status="lost", items=other_items))
    project.app_db.upsert_customer(**customer("c1", email="broken", updated_at="2024-03-01 15:00:00"))
    project.run()

    assert project.canonical("orders")[("o1",)][2] == "paid"
    assert [row[2] for row in project.canonical("order_items").values()] == ["SKU-1"]  # the good version's
    assert project.open_quarantine("orders") == {"o1": ("2024-03-01T14:00:00Z", "invalid_status")}
    assert project.canonical("customers")[("c1",)][1] == "c1@example.com"
    assert project.open_quarantine("customers") == {"c1": ("2024-03-01 15:00:00", "invalid_email")}
    assert_full_refresh_reproduces(project)

    new_items = [
        {"line": 1, "sku": "SKU-2", "quantity": 3, "unit_price": "1.50"},
        {"line": 2, "sku": "SKU-3", "quantity": 1, "unit_price": "0.25"},
    ]
    project.api_store.add(order("o1", updated_at="2024-03-01T16:00:00Z", status="shipped", items=new_items))
    project.run()

    canonical = project.canonical("orders")[("o1",)]
    assert canonical[2] == "shipped" and canonical[5:7] == (4, Decimal("4.75"))
    assert {key: row[2:] for key, row in project.canonical("order_items").items()} == {
        ("o1", 1): ("SKU-2", 3, Decimal("1.50"), Decimal("4.50")),
        ("o1", 2): ("SKU-3", 1, Decimal("0.25"), Decimal("0.25")),
    }
    assert project.open_quarantine("orders") == {}
    resolved = project.query("select version_at, is_resolved from quarantine.orders where order_id = 'o1'")
    assert resolved == [("2024-03-01T14:00:00Z", True)]
    assert_full_refresh_reproduces(project)


def test_unparseable_version_counts_as_older_than_any_parseable_one(project) -> None:
    project.app_db.upsert_customer(**customer("c1"))
    project.api_store.add(order("o1", updated_at="2024-03-01T12:00:00Z"))
    project.api_store.add(order("o2", updated_at="2024-03-01T12:00:00Z"))
    project.run()
    # o1 is re-served with a version column that cannot be parsed: it is older, so not "latest"
    project.api_store.add(order("o1", updated_at="garbage", status="shipped"))
    project.run()

    assert project.canonical("orders")[("o1",)][2] == "paid"
    assert project.open_quarantine("orders") == {}
    assert project.query("select is_resolved from quarantine.orders where order_id = 'o1'") == [(True,)]
    assert_full_refresh_reproduces(project)
