"""The app database's rows (contract 1.2), as the loader checks them for landability."""

from __future__ import annotations

from loaders.landing.records import NaturalKey, SourceRecord, Text


class Customer(SourceRecord):
    """`app_db`.customers row."""

    id: NaturalKey
    email: Text = None
    full_name: Text = None
    country: Text = None
    created_at: Text = None
    updated_at: Text = None
    deleted_at: Text = None


class Product(SourceRecord):
    """`app_db`.products row."""

    sku: NaturalKey
    name: Text = None
    category: Text = None
    list_price: Text = None
    currency: Text = None
    active: Text = None
    updated_at: Text = None
