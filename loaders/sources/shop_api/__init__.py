"""`shop_api`: orders from the shop's paginated HTTP API (contract 1.1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from loaders.core.timestamps import parse_timestamp
from loaders.landing.batch import Batch, TakenWithoutVersion, Tally, as_window, raw_table_hints, source_cursor
from loaders.sources.shop_api.helpers import RetryPolicy, make_client, order_pages, read_ahead
from loaders.sources.shop_api.records import Order
from loaders.sources.shop_api.settings import (
    FUTURE_VERSION_TOLERANCE_SECONDS,
    LATE_VERSION_LAG_SECONDS,
    MAX_EMPTY_PAGES_IN_A_ROW,
    MAX_PAGE_SIZE,
    REQUEST_DEADLINE_SECONDS,
    REQUEST_MAX_ATTEMPTS,
    REQUEST_MAX_RETRY_DELAY_SECONDS,
    REQUEST_TIMEOUT_SECONDS,
)

SOURCE = "shop_api"


@dlt.source(name=SOURCE)
def shop_api(
    base_url: str = dlt.config.value,
    token: str = dlt.secrets.value,
    page_size: int = MAX_PAGE_SIZE,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    request_max_attempts: int = REQUEST_MAX_ATTEMPTS,
    request_backoff_factor: float | None = None,
    request_max_retry_delay: float = REQUEST_MAX_RETRY_DELAY_SECONDS,
    request_deadline: float = REQUEST_DEADLINE_SECONDS,
    max_empty_pages: int = MAX_EMPTY_PAGES_IN_A_ROW,
    start: datetime | None = None,
    end: datetime | None = None,
    tally: Tally | None = None,
) -> Any:
    """Every argument from `page_size` to `max_empty_pages` is a setting (`SOURCES__SHOP_API__<NAME>`);
    settings.py says what each bounds. `start`/`end` (`elt backfill`): read only the versions updated in
    `[start, end)`, with no cursor state, instead of everything since the cursor. `tally` counts what the
    extraction hands to dlt and the requests it retried."""
    window = as_window(start, end)
    tally = tally or Tally()
    policy = RetryPolicy.configured(
        request_timeout, request_max_attempts, request_backoff_factor, request_max_retry_delay, request_deadline
    )
    client = make_client(base_url, token, policy, max_empty_pages, on_retry=tally.count_retry)

    cursor = source_cursor(LATE_VERSION_LAG_SECONDS, window)

    @dlt.resource(name="orders", **raw_table_hints("id"))
    def orders(updated=cursor) -> Iterator[Any]:
        delivered_at = datetime.now(UTC)
        horizon = delivered_at + timedelta(seconds=FUTURE_VERSION_TOLERANCE_SECONDS)
        batch = Batch(SOURCE, "orders", Order, key="id", cursor_horizon=horizon, tally=tally)
        # served on every read: taken once (a backfill's window leaves them out anyway)
        taken = TakenWithoutVersion(dlt.current.resource_state()) if window is None else None
        seq = 0
        for number, records in enumerate(read_ahead(order_pages(client, updated.start_value, page_size)), start=1):
            positions = pa.array(range(len(records)), pa.int64())
            locations = pc.binary_join_element_wise(f"page {number} item ", positions.cast(pa.string()), "")
            batch.add_records(records, locations, delivered_at, pc.add(positions, seq + 1), taken)
            seq += len(records)
            yield from batch.flush()
            if window is not None and past_window(records, window.end):
                break  # the API has no upper bound; what follows is later still
        yield from batch.finish()

    return orders


def past_window(records: list[Any], end: datetime) -> bool:
    """Whether a page (ascending by `updated_at`) reached `end`: the pages after it hold later versions only."""
    versions = (parse_timestamp(record.get("updated_at")) for record in records if isinstance(record, dict))
    return any(version is not None and version >= end for version in versions)
