"""The settlement files' rows (contract 1.3), as the loader checks them for landability."""

from __future__ import annotations

from loaders.landing.records import NaturalKey, Reference, SourceRecord, Text


class Payment(SourceRecord):
    """`payments_files` CSV row."""

    payment_id: NaturalKey
    order_id: Reference = None
    amount: Text = None
    currency: Text = None
    method: Text = None
    status: Text = None
    paid_at: Text = None
    updated_at: Text = None


PAYMENT_CSV_HEADER: tuple[str, ...] = (
    "payment_id",
    "order_id",
    "amount",
    "currency",
    "method",
    "status",
    "paid_at",
    "updated_at",
)
