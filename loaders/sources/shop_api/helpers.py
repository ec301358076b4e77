"""The orders API client: dlt's REST client with its retrying session, and clear fatal errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dlt.sources.helpers import requests as dlt_requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from requests import HTTPError

from loaders.sources.shop_api.settings import ORDERS_PATH


class ShopApiError(RuntimeError):
    """A fatal answer from the orders API: the run stops and says why, never with the token."""


def make_client(base_url: str, token: str, timeout: float, max_attempts: int) -> RESTClient:
    # dlt's session retries 429 (honouring Retry-After), 5xx, dropped connections, timeouts and
    # truncated bodies with exponential backoff; anything else reaches `pages` as an error.
    session = dlt_requests.Client(
        request_timeout=timeout,
        request_max_attempts=max_attempts,
        raise_for_status=False,
    ).session
    return RESTClient(
        base_url=base_url.rstrip("/"),
        auth=BearerTokenAuth(token),
        paginator=JSONResponseCursorPaginator(cursor_path="next_cursor", cursor_param="cursor"),
        data_selector="data",
        session=session,
    )


def format_since(moment: datetime) -> str:
    """`updated_since` is inclusive, so flooring to the second never skips a version."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_pages(client: RESTClient, since: datetime | None, page_size: int) -> Iterator[list[Any]]:
    """Each page's orders, parsed with exact decimals so '19.90' and 19.90 keep their digits."""
    params: dict[str, Any] = {"limit": page_size}
    if since is not None:
        params["updated_since"] = format_since(since)
    try:
        for page in client.paginate(ORDERS_PATH, params=params):
            body = json.loads(page.response.text, parse_float=Decimal)
            yield body.get("data") or []
    except HTTPError as exc:
        raise ShopApiError(describe_http_error(exc.response)) from None


def describe_http_error(response: Any) -> str:
    """One clear line; built from the status alone so no header, token or body is echoed."""
    hint = " (check SOURCES__SHOP_API__TOKEN)" if response.status_code in (401, 403) else ""
    kind = "still failing after retries" if response.status_code == 429 or response.status_code >= 500 else "fatal"
    return f"shop_api: GET {ORDERS_PATH} answered {response.status_code} {response.reason} ({kind}){hint}"
