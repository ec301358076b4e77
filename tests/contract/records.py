"""Valid source records to start from; a test changes only the fields its promise is about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER


def customer(customer_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": customer_id,
        "email": f"{customer_id}@example.com",
        "full_name": customer_id.title(),
        "country": "DE",
        "created_at": "2024-03-01 08:00:00",
        "updated_at": "2024-03-01 09:00:00",
        "deleted_at": None,
        **changes,
    }


def order(order_id: str, updated_at: str = "2024-03-01T12:00:00Z", **changes: Any) -> dict[str, Any]:
    return {
        "id": order_id,
        "customer_id": "c1",
        "status": "paid",
        "currency": "EUR",
        "shipping_country": "DE",
        "created_at": "2024-03-01T10:00:00Z",
        "updated_at": updated_at,
        "items": [{"line": 1, "sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
        **changes,
    }


def payment(payment_id: str, **changes: Any) -> list[str]:
    fields = {
        "payment_id": payment_id,
        "order_id": "o1",
        "amount": "20.00",
        "currency": "EUR",
        "method": "card",
        "status": "succeeded",
        "paid_at": "2024-03-01T12:30:00Z",
        "updated_at": "2024-03-01T12:30:00Z",
        **changes,
    }
    return [fields[name] for name in PAYMENT_CSV_HEADER]


def delivered(day: int, hour: int = 6) -> datetime:
    return datetime(2024, 3, day, hour, tzinfo=UTC)


def assert_full_refresh_reproduces(project: Any) -> None:
    """Contract 2.1: canonical tables and open quarantine rows are a function of the landed data."""
    incremental = project.snapshot()
    project.build("--full-refresh")
    assert project.snapshot() == incremental
