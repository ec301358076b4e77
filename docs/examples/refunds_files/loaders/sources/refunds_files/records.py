"""The refunds files' records, as the loader checks them for landability."""

from __future__ import annotations

from loaders.landing.records import NaturalKey, Reference, SourceRecord, Text


class Refund(SourceRecord):
    """One line of a `refunds_*.jsonl` file."""

    refund_id: NaturalKey
    payment_id: Reference = None
    amount: Text = None
    currency: Text = None
    reason: Text = None
    refunded_at: Text = None
    updated_at: Text = None
