"""What the rest of the project knows of `shop_api`: its resource, how a dead letter lands again, its check."""

from __future__ import annotations

import dlt
import requests

from loaders.landing.spec import Check, ResourceSpec, SourceSpec, json_record
from loaders.sources.shop_api import SOURCE, shop_api
from loaders.sources.shop_api.records import Order
from loaders.sources.shop_api.settings import FUTURE_VERSION_TOLERANCE_SECONDS, ORDERS_PATH


def check() -> Check:
    """One request for one order, with the configured URL and token."""
    base_url, token = dlt.config.get("sources.shop_api.base_url"), dlt.secrets.get("sources.shop_api.token")
    if not base_url or not token:
        return Check(SOURCE, False, "set SOURCES__SHOP_API__BASE_URL and SOURCES__SHOP_API__TOKEN")
    url = f"{str(base_url).rstrip('/')}{ORDERS_PATH}"
    try:
        response = requests.get(url, params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except requests.RequestException as exc:
        return Check(SOURCE, False, f"GET {url}: cannot reach it ({type(exc).__name__})")
    if response.status_code == 401:
        return Check(SOURCE, False, f"GET {url}: 401, the token is not accepted (SOURCES__SHOP_API__TOKEN)")
    if response.status_code != 200:
        return Check(SOURCE, False, f"GET {url}: HTTP {response.status_code}")
    try:
        page = response.json()
        assert isinstance(page.get("data"), list)
    except Exception:
        return Check(SOURCE, False, f"GET {url}: 200 but not an orders page")
    return Check(SOURCE, True, f"GET {url}: 200, token accepted")


SPEC = SourceSpec(
    SOURCE,
    shop_api,
    (ResourceSpec("orders", Order, "id", json_record, cursor_tolerance_seconds=FUTURE_VERSION_TOLERANCE_SECONDS),),
    check,
)
