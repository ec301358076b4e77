"""How a good record is made bad: contract-rule violations (landable) and damage (unlandable).

Each `invalid_*` function takes a record's fields before formatting (timestamps as datetimes, money as
Decimal) and returns the broken fields with the contract 2.2 reason code it is meant to trigger, so the
rule codes vary across everything the contract lists. The `damaged_*` functions take the finished record
and return text a loader cannot land at all. All are pure given the random generator.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from random import Random
from typing import Any

from loaders.simulate.catalog import (
    BAD_TIMESTAMP,
    CURRENCIES,
    PAYMENT_METHODS,
    UNKNOWN_COUNTRY,
    UNKNOWN_CURRENCY,
    UNKNOWN_CUSTOMER_ID,
    UNKNOWN_ORDER_ID,
)

Fields = dict[str, Any]


def _later_than_updated(fields: Fields, rng: Random) -> Fields:
    return {**fields, "created_at": fields["updated_at"] + timedelta(hours=rng.randint(1, 48))}


def invalid_customer(fields: Fields, rng: Random) -> tuple[Fields, str]:
    rule = rng.choice(("invalid_email", "unknown_country", "updated_before_created"))
    if rule == "invalid_email":
        local, _, domain = str(fields["email"]).partition("@")
        bad = rng.choice((f"{local}.{domain}", f"{local}@", f"{local} x@{domain}", f"{local}@localhost", ""))
        return {**fields, "email": bad}, rule
    if rule == "unknown_country":
        return {**fields, "country": UNKNOWN_COUNTRY}, rule
    return _later_than_updated(fields, rng), rule


def invalid_product(fields: Fields, rng: Random) -> tuple[Fields, str]:
    rule = rng.choice(("bad_price", "bad_price", "unknown_currency"))
    if rule == "bad_price":
        return {**fields, "list_price": rng.choice((None, -fields["list_price"], Decimal("-0.01")))}, rule
    return {**fields, "currency": UNKNOWN_CURRENCY}, rule


ORDER_RULES: tuple[str, ...] = (
    "unknown_currency",
    "invalid_status",
    "unknown_customer",
    "unknown_country",
    "no_items",
    "bad_item",
    "updated_before_created",
    "bad_timestamp",
)


def invalid_order(fields: Fields, rng: Random) -> tuple[Fields, str]:
    """`fields["items"]` is a list of item dicts (quantity int, unit_price Decimal)."""
    rule = rng.choice(ORDER_RULES)
    if rule == "unknown_currency":
        return {**fields, "currency": UNKNOWN_CURRENCY}, rule
    if rule == "invalid_status":
        return {**fields, "status": rng.choice(("lost", "on_hold"))}, rule
    if rule == "unknown_customer":
        return {**fields, "customer_id": UNKNOWN_CUSTOMER_ID}, rule
    if rule == "unknown_country":
        return {**fields, "shipping_country": rng.choice((UNKNOWN_COUNTRY, None))}, rule
    if rule == "no_items":
        return {**fields, "items": rng.choice(([], None))}, rule
    if rule == "bad_item":
        items = [dict(item) for item in fields["items"]]
        broken = rng.choice(
            (
                {"quantity": 0},
                {"quantity": "1.5"},
                {"quantity": -1},
                {"unit_price": "1.999"},
                {"unit_price": Decimal("-3.00")},
                {"sku": None},
            )
        )
        items[rng.randrange(len(items))].update(broken)
        return {**fields, "items": items}, rule
    if rule == "updated_before_created":
        return _later_than_updated(fields, rng), rule
    # An unparseable version column also makes the version "older than any parseable one" (contract 2.1).
    column = rng.choice(("created_at", "created_at", "updated_at"))
    return {**fields, column: BAD_TIMESTAMP}, rule


PAYMENT_RULES: tuple[str, ...] = (
    "bad_amount",
    "bad_timestamp",
    "invalid_status",
    "invalid_method",
    "unknown_order",
    "currency_mismatch",
    "unknown_currency",
)


def invalid_payment(fields: Fields, rng: Random) -> tuple[Fields, str]:
    rule = rng.choice(PAYMENT_RULES)
    if rule == "bad_amount":
        return {**fields, "amount": rng.choice(("-5.00", "12.345", "0.00", "twelve"))}, rule
    if rule == "bad_timestamp":
        return {**fields, rng.choice(("paid_at", "paid_at", "updated_at")): BAD_TIMESTAMP}, rule
    if rule == "invalid_status":
        return {**fields, "status": rng.choice(("pending", "lost"))}, rule
    if rule == "invalid_method":
        return {**fields, "method": rng.choice(("cash", "cheque"))}, rule
    if rule == "unknown_order":
        return {**fields, "order_id": UNKNOWN_ORDER_ID}, rule
    if rule == "currency_mismatch":
        return {**fields, "currency": rng.choice([c for c in CURRENCIES if c != fields["currency"]])}, rule
    return {**fields, "currency": UNKNOWN_CURRENCY}, rule


def other_method(method: str, rng: Random) -> str:
    return rng.choice([m for m in PAYMENT_METHODS if m != method])


def damaged_order_body(body: Fields, rng: Random) -> str:
    """JSON text the API can still serve but no loader can land: no natural key, or not an object."""
    kind = rng.choice(("missing_id", "null_id", "list", "string"))
    if kind == "missing_id":
        return json.dumps({k: v for k, v in body.items() if k != "id"})
    if kind == "null_id":
        return json.dumps({**body, "id": None})
    if kind == "list":
        return json.dumps([body])
    return json.dumps(json.dumps(body))  # the object double-encoded: a JSON string


def damaged_payment_line(values: tuple[str, ...], rng: Random) -> str:
    """A raw CSV line: a wrong number of fields, or an empty payment_id."""
    kind = rng.choice(("missing_field", "extra_field", "decimal_comma", "empty_payment_id"))
    if kind == "missing_field":
        return ",".join(values[:-1])
    if kind == "extra_field":
        return ",".join((*values, "EXTRA"))
    if kind == "decimal_comma":
        # A European-formatted amount, unquoted: the comma splits it into two fields.
        return ",".join((*values[:2], values[2].replace(".", ",") + ("" if "." in values[2] else ",00"), *values[3:]))
    return ",".join(("", *values[1:]))
