"""Contract 2.2: every rule quarantines what it should and nothing else; several rules at once list all.

One crafted batch per source holds, for each reason code, records that break it (alone and together
with others) beside valid controls. After one run, the open quarantine rows must be exactly the
expected ones with exactly the expected reason codes, and every other key must be canonical.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER

pytestmark = pytest.mark.warehouses("duckdb", "postgres")

T0 = "2024-03-01 09:00:00"
T1 = "2024-03-01 10:00:00"

CUSTOMERS = {
    # key: (fields, expected failed_rules or "" when valid)
    "c_ok": ({"email": "ann@example.com", "country": "DE"}, ""),
    "c_deleted": ({"email": "bob@example.com", "country": "FR", "deleted_at": T1}, ""),
    "c_email_at": ({"email": "no-at-sign.example.com", "country": "DE"}, "invalid_email"),
    "c_email_space": ({"email": "a b@example.com", "country": "DE"}, "invalid_email"),
    "c_email_null": ({"email": None, "country": "DE"}, "invalid_email"),
    "c_country": ({"email": "c@example.com", "country": "XX"}, "unknown_country"),
    "c_country_case": ({"email": "d@example.com", "country": "de"}, "unknown_country"),
    "c_before": (
        {"email": "e@example.com", "country": "DE", "created_at": T1, "updated_at": T0},
        "updated_before_created",
    ),
    "c_all": (
        {"email": "bad", "country": "ZZ", "created_at": T1, "updated_at": T0},
        "invalid_email,unknown_country,updated_before_created",
    ),
}

PRODUCTS = {
    "SKU-OK": ({"list_price": "19.90", "currency": "EUR"}, ""),
    "SKU-FREE": ({"list_price": "0", "currency": "JPY"}, ""),
    "SKU-NEG": ({"list_price": "-1.00", "currency": "EUR"}, "bad_price"),
    "SKU-NULL": ({"list_price": None, "currency": "EUR"}, "bad_price"),
    "SKU-CUR": ({"list_price": "5.00", "currency": "XXY"}, "unknown_currency"),
    "SKU-CUR-CASE": ({"list_price": "5.00", "currency": "eur"}, "unknown_currency"),
    "SKU-BOTH": ({"list_price": "-5", "currency": "ABC"}, "bad_price,unknown_currency"),
}

ITEM = {"line": 1, "sku": "SKU-OK", "quantity": 2, "unit_price": "19.90"}


def order(order_id: str, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": order_id,
        "customer_id": "c_ok",
        "status": "paid",
        "currency": "EUR",
        "shipping_country": "DE",
        "created_at": "2024-03-01T10:00:00Z",
        "updated_at": "2024-03-01T12:00:00Z",
        "items": [ITEM],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


ORDERS = {
    "o_ok": (order("o_ok"), ""),
    "o_strings": (
        order("o_strings", items=[{"line": "1", "sku": "SKU-OK", "quantity": "3", "unit_price": 1.5}], coupon="X"),
        "",
    ),
    "o_currency": (order("o_currency", currency="XXY"), "unknown_currency"),
    "o_status": (order("o_status", status="lost"), "invalid_status"),
    "o_status_null": (order("o_status_null", status=None), "invalid_status"),
    "o_customer": (order("o_customer", customer_id="c_nobody"), "unknown_customer"),
    "o_customer_quarantined": (order("o_customer_quarantined", customer_id="c_country"), "unknown_customer"),
    "o_country": (order("o_country", shipping_country="XX"), "unknown_country"),
    "o_items_empty": (order("o_items_empty", items=[]), "no_items"),
    "o_items_missing": (order("o_items_missing", items=...), "no_items"),
    "o_items_null": (order("o_items_null", items=None), "no_items"),
    "o_item_sku": (order("o_item_sku", items=[{"line": 1, "quantity": 1, "unit_price": "1.00"}]), "bad_item"),
    "o_item_qty0": (order("o_item_qty0", items=[{**ITEM, "quantity": 0}]), "bad_item"),
    "o_item_qty_frac": (order("o_item_qty_frac", items=[{**ITEM, "quantity": "1.5"}]), "bad_item"),
    "o_item_price_3dp": (order("o_item_price_3dp", items=[{**ITEM, "unit_price": "1.999"}]), "bad_item"),
    "o_item_price_neg": (order("o_item_price_neg", items=[{**ITEM, "unit_price": "-1.00"}]), "bad_item"),
    "o_item_second": (order("o_item_second", items=[ITEM, {**ITEM, "line": 2, "sku": ""}]), "bad_item"),
    "o_before": (order("o_before", created_at="2024-03-01T13:00:00Z"), "updated_before_created"),
    "o_created_bad": (order("o_created_bad", created_at="yesterday"), "bad_timestamp"),
    "o_updated_missing": (order("o_updated_missing", updated_at=...), "bad_timestamp"),
    "o_many": (
        order("o_many", status="lost", currency="XXY", customer_id="c_nobody", shipping_country="XX", items=[]),
        "invalid_status,no_items,unknown_country,unknown_currency,unknown_customer",
    ),
}

PAYMENT = {
    "order_id": "o_ok",
    "amount": "39.80",
    "currency": "EUR",
    "method": "card",
    "status": "succeeded",
    "paid_at": "2024-03-01T12:31:00Z",
    "updated_at": "2024-03-01T12:31:00Z",
}

PAYMENTS = {
    "p_ok": ({}, ""),
    "p_refund": ({"status": "refunded", "method": "wallet"}, ""),
    "p_failed": ({"status": "failed", "method": "bank_transfer"}, ""),
    "p_amount_zero": ({"amount": "0"}, "bad_amount"),
    "p_amount_neg": ({"amount": "-5.00"}, "bad_amount"),
    "p_amount_3dp": ({"amount": "12.345"}, "bad_amount"),
    "p_amount_text": ({"amount": "12,30"}, "bad_amount"),
    "p_amount_empty": ({"amount": ""}, "bad_amount"),
    "p_currency": ({"currency": "XXY"}, "currency_mismatch,unknown_currency"),
    "p_paid_bad": ({"paid_at": "not-a-date"}, "bad_timestamp"),
    "p_updated_bad": ({"updated_at": "2024-13-45T99:00:00Z"}, "bad_timestamp"),
    "p_status": ({"status": "pending"}, "invalid_status"),
    "p_method": ({"method": "cash"}, "invalid_method"),
    "p_order": ({"order_id": "o_nowhere"}, "unknown_order"),
    "p_order_quarantined": ({"order_id": "o_status"}, "unknown_order"),
    "p_mismatch": ({"currency": "USD"}, "currency_mismatch"),
    "p_many": ({"amount": "-1", "status": "pending", "method": "cash"}, "bad_amount,invalid_method,invalid_status"),
}


def expected(cases: dict[str, tuple[object, str]]) -> tuple[set[str], dict[str, str]]:
    valid = {key for key, (_, rules) in cases.items() if not rules}
    return valid, {key: rules for key, (_, rules) in cases.items() if rules}


def plant_sources(project) -> None:
    db = project.app_db
    for key, (fields, _) in CUSTOMERS.items():
        db.upsert_customer(
            id=key, full_name=key.title(), **{"created_at": T0, "updated_at": T1, "deleted_at": None, **fields}
        )
    for key, (fields, _) in PRODUCTS.items():
        db.upsert_product(sku=key, name=key, category="test", active=1, updated_at=T1, **fields)
    project.api_store.add_many(body for body, _ in ORDERS.values())
    rows = [[key, *({**PAYMENT, **fields}[c] for c in PAYMENT_CSV_HEADER[1:])] for key, (fields, _) in PAYMENTS.items()]
    project.deliver("payments_20240301_01.csv", rows, datetime(2024, 3, 2, 6, tzinfo=UTC))


def test_each_rule_quarantines_exactly_what_breaks_it(project) -> None:
    plant_sources(project)
    project.run()

    for table, cases, key in (
        ("customers", CUSTOMERS, ("customer_id",)),
        ("products", PRODUCTS, ("sku",)),
        ("orders", ORDERS, ("order_id",)),
        ("payments", PAYMENTS, ("payment_id",)),
    ):
        valid, failing = expected(cases)
        open_rows = {k: rules for k, (_, rules) in project.open_quarantine(table).items()}
        assert open_rows == failing, f"quarantine.{table}"
        assert {k[0] for k in project.canonical(table)} == valid, f"analytics.{table}"
        del key

    customers = project.canonical("customers")
    assert customers[("c_deleted",)][6] is True and customers[("c_ok",)][6] is False  # soft delete kept


def test_quarantine_row_keeps_the_landed_record_and_version(project) -> None:
    plant_sources(project)
    project.run()

    version_at, record, first_seen, last_seen = project.query(
        "select version_at, record, first_seen_at, last_seen_at from quarantine.orders where order_id = 'o_status'"
    )[0]
    assert version_at == "2024-03-01T12:00:00Z"
    assert json.loads(record)["status"] == "lost"
    assert first_seen is not None and last_seen is not None
    # the version whose version column is missing lands with it NULL, as landed
    assert project.query("select version_at from quarantine.orders where order_id = 'o_updated_missing'") == [(None,)]
