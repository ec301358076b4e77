"""`elt check`: can this machine reach the warehouse and every source, with the settings it has? Says what is
wrong in one line each, never a secret, and loads nothing (like `meltano config test`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from loaders.entities import SOURCE_NAMES
from loaders.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def describe(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'FAILED'} — {self.detail}"


def setting(key: str, secret: bool = False) -> str | None:
    import dlt

    value = (dlt.secrets if secret else dlt.config).get(f"sources.{key}")
    return None if value in (None, "") else str(value)


def check_warehouse(settings: Settings) -> Check:
    from loaders.warehouse import RunLocked, WarehouseUnreachable, fetch_all

    where = settings.warehouse_location()
    if settings.target == "duckdb" and not settings.duckdb_path.exists():
        folder = settings.duckdb_path.parent
        while not folder.exists():
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            return Check("warehouse", False, f"duckdb {where} does not exist and {folder} is not writable")
        return Check("warehouse", True, f"duckdb {where} does not exist yet: the first run creates it")
    try:
        fetch_all(settings, "select 1")
    except (WarehouseUnreachable, RunLocked) as exc:
        return Check("warehouse", False, str(exc))
    except Exception as exc:  # a DuckDB file that is not a database, say
        return Check("warehouse", False, f"{settings.target} {where}: {type(exc).__name__}: {exc}".splitlines()[0])
    return Check("warehouse", True, f"{settings.target} {where} answers")


def check_shop_api() -> Check:
    import requests

    base_url, token = setting("shop_api.base_url"), setting("shop_api.token", secret=True)
    if not base_url or not token:
        return Check("shop_api", False, "set SOURCES__SHOP_API__BASE_URL and SOURCES__SHOP_API__TOKEN")
    url = f"{base_url.rstrip('/')}/v1/orders"
    try:
        response = requests.get(url, params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except requests.RequestException as exc:
        return Check("shop_api", False, f"GET {url}: cannot reach it ({type(exc).__name__})")
    if response.status_code == 401:
        return Check("shop_api", False, f"GET {url}: 401, the token is not accepted (SOURCES__SHOP_API__TOKEN)")
    if response.status_code != 200:
        return Check("shop_api", False, f"GET {url}: HTTP {response.status_code}")
    try:
        page = response.json()
        assert isinstance(page.get("data"), list)
    except Exception:
        return Check("shop_api", False, f"GET {url}: 200 but not an orders page")
    return Check("shop_api", True, f"GET {url}: 200, token accepted")


def check_app_db() -> Check:
    import sqlalchemy as sa

    from loaders.sources.app_db import AppDbError, connect

    credentials = setting("app_db.credentials", secret=True)
    if not credentials:
        return Check("app_db", False, "set SOURCES__APP_DB__CREDENTIALS (a SQLAlchemy URL)")
    try:
        engine = connect(credentials)
        tables = set(sa.inspect(engine).get_table_names())
    except AppDbError as exc:
        return Check("app_db", False, str(exc).removeprefix("app_db: "))
    except Exception as exc:  # the driver's message can repeat the URL: only its kind
        return Check("app_db", False, f"cannot connect ({type(exc).__name__})")
    missing = {"customers", "products"} - tables
    if missing:
        return Check("app_db", False, f"connected, but no table {', '.join(sorted(missing))}")
    return Check("app_db", True, "connected; customers and products are there")


def check_payments_files() -> Check:
    from dlt.common.storages.configuration import FilesystemConfiguration
    from dlt.common.storages.fsspec_filesystem import fsspec_from_config, glob_files

    from loaders.sources.payments_files import FILE_GLOB

    bucket_url = setting("payments_files.bucket_url")
    if not bucket_url:
        return Check("payments_files", False, "set SOURCES__PAYMENTS_FILES__BUCKET_URL")
    try:
        config = FilesystemConfiguration(bucket_url=bucket_url)
        client, _ = fsspec_from_config(config)
        if not client.isdir(config.bucket_url):
            return Check("payments_files", False, f"{bucket_url}: no such folder")
        count = sum(1 for _ in glob_files(client, config.bucket_url, FILE_GLOB))
    except Exception as exc:
        return Check("payments_files", False, f"{bucket_url}: {type(exc).__name__}")
    return Check("payments_files", True, f"{bucket_url}: {count} file(s) matching {FILE_GLOB}")


SOURCE_CHECKS: dict[str, Callable[[], Check]] = {
    "shop_api": check_shop_api,
    "app_db": check_app_db,
    "payments_files": check_payments_files,
}


def run_checks(settings: Settings) -> list[Check]:
    missing = set(SOURCE_NAMES) - set(SOURCE_CHECKS)
    if missing:
        raise RuntimeError(f"no connection check for {', '.join(sorted(missing))}: add one to loaders/check.py")
    return [check_warehouse(settings), *(SOURCE_CHECKS[name]() for name in SOURCE_NAMES)]
