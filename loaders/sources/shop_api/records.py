"""The orders API's records (contract 1.1), as the loader checks them for landability."""

from __future__ import annotations

from loaders.landing.records import JsonText, NaturalKey, Reference, SourceRecord, Text


class OrderItem(SourceRecord):
    line: Text = None
    sku: Text = None
    quantity: Text = None
    unit_price: Text = None


class Order(SourceRecord):
    """`shop_api` /v1/orders element. `items` is kept as it arrived; dbt judges it."""

    id: NaturalKey
    customer_id: Reference = None
    status: Text = None
    currency: Text = None
    shipping_country: Text = None
    created_at: Text = None
    updated_at: Text = None
    items: JsonText = None
