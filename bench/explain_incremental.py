"""What an incremental run costs at scale: a 1 % change on a warehouse of >= 1 M orders, DuckDB and PostgreSQL.

    .venv/bin/python -m bench.explain_incremental --orders 1000000 --target duckdb|postgres|both

For each target, in a fresh warehouse (a DuckDB file in a temporary folder; on PostgreSQL a fresh database
on the server the PG* variables point at, or else on a throwaway server started from the machine's
binaries):

1. a tiny real load (the simulator, the API server, `load_sources`) so dlt creates the raw schemas,
   tables and `_dlt_loads` exactly as in production;
2. the raw history, bulk-inserted with SQL in a few large statements, shaped like the real rows (every
   column of the real tables, checked against information_schema), spread over `--history-loads`
   synthetic completed loads (one a "day", each about 1 % of the rows, like a daily run's loads); on
   PostgreSQL the raw indexes the harness creates after a load (`loaders.indexes.ensure_raw_indexes`)
   and fresh statistics;
3. `dbt build --full-refresh` (the first build);
4. one new completed load per source holding a 1 % change (new versions of 1 % of the orders, half
   later and half late, 1 % of the customers, 1 % of the payments, a few new orders and their
   payments), then the plain, incremental `dbt build`, then `dbt build --full-refresh` on the same data:
   wall and CPU time of each (CPU: the dbt process tree via getrusage(RUSAGE_CHILDREN), plus on
   PostgreSQL the server's backends, from /proc of the postmaster when the server is local; on the
   throwaway server also the slowest statements of each build, from its log). The builds leave out unit
   tests (as the test suite's do) and the nodes of `--exclude` (by default the singular test that does
   not finish on PostgreSQL at 1 M orders), which are then timed alone, under a statement timeout;
5. a second 1 % change load, and `EXPLAIN ANALYZE` of the incremental SELECT of `int_orders__versions`,
   `int_payments__versions` and `order_items` as `dbt compile` renders it, each taken just before the
   model consumes that load (the models it judges against ran on it first, as in a build), with the rows
   every scan node reads from each table against the table's size; with `--compare-project DIR` (a copy of
   the project with a fix to try, see tests.support.dbt_project) the same SELECTs as that copy writes them,
   on the same state.

Results: bench/results/explain_<target>.txt (plans), incremental_<label>_<target>.json (figures) and
incremental_<label>.md (the table, regenerated from every target's JSON of that label; a hand-written
incremental_<label>.notes.md beside it is appended when present). Progress and dbt's output go to stderr;
the Markdown table is printed on stdout at the end.

Before every timed build the warehouse is brought to a steady state: PostgreSQL `VACUUM ANALYZE` (what
autovacuum does between two scheduled runs), DuckDB `CHECKPOINT`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loaders.core.registry import PROJECT_DIR
from loaders.core.settings import Settings
from loaders.warehouse import connect

RESULTS_DIR = PROJECT_DIR / "bench" / "results"
SOURCES = ("shop_api", "app_db", "payments_files")
# The raw tables this benchmark fills, per dlt source, and their natural keys (the merge keys' first column).
RAW_TABLES = {"shop_api": ("orders",), "app_db": ("customers", "products"), "payments_files": ("payments",)}
NATURAL_KEYS = {"orders": "id", "customers": "id", "products": "sku", "payments": "payment_id"}
# The models whose incremental SELECT is explained, each after the models it judges against ran.
EXPLAINED = {
    "int_orders__versions": ("int_customers__versions", "int_products__versions"),
    "int_payments__versions": ("int_orders__versions",),
    "order_items": (),  # int_orders__versions ran on the change for the step before
}
# A distinct fractional part per source, so no two sources share a load id (as dlt's never do).
LOAD_ID_FRACTION = {"shop_api": "100001", "app_db": "200002", "payments_files": "300003"}
ORDERS_EPOCH = "2024-01-01 00:00:00"
CUSTOMERS_EPOCH = "2023-01-01 00:00:00"
PRODUCTS_EPOCH = "2023-06-01 00:00:00"
DAY = 86400
# Left out of the timed builds by default, and timed alone (with a statement timeout on PostgreSQL): on
# PostgreSQL at 1 M orders its `NOT IN (subquery)` under an OR runs as a plain, un-hashed SubPlan (the
# subquery's rows exceed work_mem), quadratic in the history; the build does not finish in hours.
SLOW_TESTS = ("latest_version_is_canonical_or_open_in_quarantine",)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- scale -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    orders: int
    history_loads: int

    @property
    def customers(self) -> int:
        return max(1000, self.orders // 10)

    @property
    def products(self) -> int:
        return 1000

    @property
    def new_orders_per_change(self) -> int:
        return max(10, self.orders // 10000)

    @property
    def seconds_between_orders(self) -> float:
        return self.history_loads * DAY / self.orders

    @property
    def label(self) -> str:
        n = self.orders
        if n % 1_000_000 == 0:
            return f"{n // 1_000_000}M"
        if n % 1000 == 0:
            return f"{n // 1000}k"
        return str(n)


# -- SQL that differs between the two warehouses ---------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    name: str

    def iso(self, ts: str) -> str:
        """2024-03-01T03:12:35Z, the orders API's and the settlement files' spelling."""
        if self.name == "duckdb":
            return f"strftime({ts}, '%Y-%m-%dT%H:%M:%SZ')"
        return f"""to_char({ts}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""

    def plain(self, ts: str) -> str:
        """2024-03-01 03:12:35, the app database's spelling."""
        if self.name == "duckdb":
            return f"strftime({ts}, '%Y-%m-%d %H:%M:%S')"
        return f"to_char({ts}, 'YYYY-MM-DD HH24:MI:SS')"

    def compact_date(self, ts: str) -> str:
        if self.name == "duckdb":
            return f"strftime({ts}, '%Y%m%d')"
        return f"to_char({ts}, 'YYYYMMDD')"


def seconds(expression: str) -> str:
    return f"interval '1 second' * ({expression})"


def money(cents: str) -> str:
    """Integer cents as a decimal text with two places, the same on both warehouses."""
    return (
        f"cast(cast((({cents}) - ({cents}) % 100) / 100 as bigint) as varchar)"
        f" || '.' || lpad(cast(({cents}) % 100 as varchar), 2, '0')"
    )


def numbers(upto: str, name: str = "i") -> str:
    return f"(select cast(g.n as bigint) as {name} from generate_series(1, {upto}) as g(n)) as numbers"


# -- synthetic raw rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Loads:
    """The synthetic load ids: `history_loads` loads one day apart, the newest just after the real one."""

    first_epoch: int
    count: int

    def history_id_sql(self, source: str, bucket: str) -> str:
        return f"cast({self.first_epoch} + ({bucket}) * {DAY} as varchar) || '.{LOAD_ID_FRACTION[source]}'"

    def history_time_sql(self, bucket: str) -> str:
        return f"to_timestamp({self.first_epoch} + ({bucket}) * {DAY})"


def order_base(scale: Scale, upto: str) -> str:
    """One row per order number i: the fields every version of the order (and its payment) derives from."""
    k = scale.history_loads
    return f"""
    select
        i,
        cast(floor((i - 1) * {k}.0 / {scale.orders}) as bigint) as day,
        cast('{ORDERS_EPOCH}' as timestamp)
            + {seconds(f"cast(floor((i - 1) * {scale.seconds_between_orders:.6f}) as bigint)")} as created,
        'o_' || lpad(cast(i as varchar), 8, '0') as order_id,
        'c_' || lpad(cast((i * 7919) % {scale.customers} + 1 as varchar), 8, '0') as customer_id,
        case
            when i % 97 = 0 then 'ZZZ'
            else case i % 4 when 0 then 'EUR' when 1 then 'USD' when 2 then 'SEK' else 'GBP' end
        end as currency,
        case i % 5 when 0 then 'DE' when 1 then 'FR' when 2 then 'SE' when 3 then 'GB' else 'NL' end
            as shipping_country,
        1 + i % 3 as n_items
    from {numbers(upto)}
    """


def item_fields(scale: Scale, k: int) -> tuple[str, str]:
    """Item k of an order as the loader lands it in `items` (keys sorted) and in `_record` (as sent)."""
    sku = f"'SKU-' || lpad(cast(1000 + (i * 31 + {k * 17}) % {scale.products} + 1 as varchar), 4, '0')"
    quantity = f"cast(1 + (i + {k}) % 4 as varchar)"
    price = money(f"100 + (i * 37 + {k * 101}) % 20000")
    landed = (
        f"""'{{"line": {k}, "quantity": ' || {quantity} || ', "sku": "' || {sku} || '", "unit_price": "' """
        f"""|| {price} || '"}}'"""
    )
    sent = (
        f"""'{{"line": {k}, "sku": "' || {sku} || '", "quantity": ' || {quantity} || ', "unit_price": "' """
        f"""|| {price} || '"}}'"""
    )
    return landed, sent


def json_array(element: str, scale: Scale) -> str:
    parts = [f"{element}1"]
    parts += [f"case when n_items >= {k} then ', ' || {element}{k} else '' end" for k in (2, 3)]
    return "'[' || " + " || ".join(parts) + " || ']'"


def orders_select(dialect: Dialect, scale: Scale, upto: str, versions: str) -> str:
    """Raw `orders` rows. `versions` selects from `base` (order_base) adding status, updated, load_id,
    delivered_at."""
    items = [item_fields(scale, k) for k in (1, 2, 3)]
    item_columns = ",\n".join(
        f"{landed} as item_landed{k}, {sent} as item_sent{k}" for k, (landed, sent) in enumerate(items, start=1)
    )
    record = (
        """'{"id": "' || order_id || '", "customer_id": "' || customer_id || '", "status": "' || status """
        """|| '", "currency": "' || currency || '", "shipping_country": "' || shipping_country """
        """|| '", "created_at": "' || created_text || '", "updated_at": "' || updated_text || '", "items": ' """
        f"""|| {json_array("item_sent", scale)} || '}}'"""
    )
    return f"""
    with base as ({order_base(scale, upto)}),
    versions as ({versions}),
    texts as (
        select
            versions.*,
            {dialect.iso("created")} as created_text,
            {dialect.iso("updated")} as updated_text,
            {item_columns}
        from versions
    )
    select
        order_id as id,
        customer_id,
        status,
        currency,
        shipping_country,
        created_text as created_at,
        updated_text as updated_at,
        {json_array("item_landed", scale)} as items,
        updated_text as _version,
        cast(updated as timestamp with time zone) as _version_at,
        delivered_at as _delivered_at,
        i as _delivery_seq,
        {record} as _record,
        cast(updated as timestamp with time zone) as _cursor_at,
        load_id as _dlt_load_id
    from texts
    order by _dlt_load_id, _delivery_seq
    """


def payment_base(scale: Scale, upto: str) -> str:
    return f"""
    select
        base.*,
        'p_' || lpad(cast(i as varchar), 8, '0') as payment_id,
        created + {seconds("1800 + i % 600")} as paid,
        {money("100 + (i * 53) % 50000")} as amount,
        case i % 3 when 0 then 'card' when 1 then 'bank_transfer' else 'wallet' end as method
    from ({order_base(scale, upto)}) as base
    """


def payments_select(dialect: Dialect, scale: Scale, upto: str, versions: str) -> str:
    record = (
        """'{"payment_id": "' || payment_id || '", "order_id": "' || order_id || '", "amount": "' || amount """
        """|| '", "currency": "' || currency || '", "method": "' || method || '", "status": "' || status """
        """|| '", "paid_at": "' || paid_text || '", "updated_at": "' || updated_text || '"}'"""
    )
    return f"""
    with base as ({payment_base(scale, upto)}),
    versions as ({versions}),
    texts as (
        select versions.*, {dialect.iso("paid")} as paid_text, {dialect.iso("updated")} as updated_text
        from versions
    )
    select
        payment_id,
        order_id,
        amount,
        currency,
        method,
        status,
        paid_text as paid_at,
        updated_text as updated_at,
        updated_text as _version,
        cast(updated as timestamp with time zone) as _version_at,
        delivered_at as _delivered_at,
        i as _delivery_seq,
        {record} as _record,
        'payments_' || {dialect.compact_date("delivered_at")} || '_01.csv' as _source_file,
        load_id as _dlt_load_id
    from texts
    order by _dlt_load_id, _delivery_seq
    """


def customer_base(scale: Scale, upto: str) -> str:
    k = scale.history_loads
    return f"""
    select
        j,
        cast(floor((j - 1) * {k}.0 / {scale.customers}) as bigint) as day,
        cast('{CUSTOMERS_EPOCH}' as timestamp)
            + {seconds(f"cast(floor((j - 1) * {300 * DAY / scale.customers:.6f}) as bigint)")} as created,
        'c_' || lpad(cast(j as varchar), 8, '0') as customer_id,
        case j % 5 when 0 then 'DE' when 1 then 'FR' when 2 then 'SE' when 3 then 'GB' else 'NL' end as country
    from {numbers(upto, "j")}
    """


def customers_select(dialect: Dialect, scale: Scale, upto: str, versions: str) -> str:
    record = (
        """'{"id": "' || customer_id || '", "email": "' || email || '", "full_name": "' || full_name """
        """|| '", "country": "' || country || '", "created_at": "' || created_text || '", "updated_at": "' """
        """|| updated_text || '", "deleted_at": null}'"""
    )
    return f"""
    with base as ({customer_base(scale, upto)}),
    versions as ({versions}),
    texts as (
        select versions.*, {dialect.plain("created")} as created_text, {dialect.plain("updated")} as updated_text
        from versions
    )
    select
        customer_id as id,
        email,
        full_name,
        country,
        created_text as created_at,
        updated_text as updated_at,
        cast(null as varchar) as deleted_at,
        updated_text as _version,
        cast(updated as timestamp with time zone) as _version_at,
        delivered_at as _delivered_at,
        j as _delivery_seq,
        {record} as _record,
        cast(updated as timestamp with time zone) as _cursor_at,
        load_id as _dlt_load_id
    from texts
    order by _dlt_load_id, _delivery_seq
    """


def products_select(dialect: Dialect, scale: Scale, loads: Loads) -> str:
    record = (
        """'{"sku": "' || sku || '", "name": "' || name || '", "category": "' || category || '", "list_price": "' """
        """|| list_price || '", "currency": "EUR", "active": "' || active || '", "updated_at": "' """
        """|| updated_text || '"}'"""
    )
    return f"""
    with base as (
        select
            k,
            'SKU-' || lpad(cast(1000 + k as varchar), 4, '0') as sku,
            'Product ' || cast(k as varchar) as name,
            case k % 4 when 0 then 'home' when 1 then 'garden' when 2 then 'sports' else 'toys' end as category,
            {money("100 + (k * 37) % 20000")} as list_price,
            case when k % 10 = 0 then '0' else '1' end as active,
            cast('{PRODUCTS_EPOCH}' as timestamp) + {seconds("k * 60")} as updated
        from {numbers(str(scale.products), "k")}
    ),
    texts as (select base.*, {dialect.plain("updated")} as updated_text from base)
    select
        sku,
        name,
        category,
        list_price,
        'EUR' as currency,
        active,
        updated_text as updated_at,
        updated_text as _version,
        cast(updated as timestamp with time zone) as _version_at,
        {loads.history_time_sql("0")} as _delivered_at,
        k as _delivery_seq,
        {record} as _record,
        cast(updated as timestamp with time zone) as _cursor_at,
        {loads.history_id_sql("app_db", "0")} as _dlt_load_id
    from texts
    order by k
    """


def history_selects(dialect: Dialect, scale: Scale, loads: Loads) -> dict[str, str]:
    """Raw rows of the history: ~1.3 versions an order, 1.2 a customer, 1.1 a payment. A second version
    lands a few loads after the first (none past the newest load), so every load is about 1 % of the rows."""
    last = scale.history_loads - 1
    n = str(scale.orders)

    def at(source: str, bucket: str) -> str:
        return f"{loads.history_id_sql(source, bucket)} as load_id, {loads.history_time_sql(bucket)} as delivered_at"

    orders = f"""
        select base.*, 'placed' as status, created as updated, {at("shop_api", "day")} from base
        union all
        select base.*, 'paid', created + {seconds("3600 + i % 3600")}, {at("shop_api", "day + 1")}
        from base where i % 10 < 3 and day + 1 <= {last}
    """
    payments = f"""
        select base.*, 'succeeded' as status, paid as updated, {at("payments_files", "day")} from base
        union all
        select base.*, 'refunded', paid + {seconds(str(2 * DAY))}, {at("payments_files", "day + 2")}
        from base where i % 10 = 5 and day + 2 <= {last}
    """
    customers = f"""
        select
            base.*,
            case when j % 211 = 0 then 'not-an-email'
                else 'customer.' || cast(j as varchar) || '@mail.example.net' end as email,
            'Customer ' || cast(j as varchar) as full_name,
            created + {seconds("3600")} as updated,
            {at("app_db", "day")}
        from base
        union all
        select
            base.*,
            'customer.' || cast(j as varchar) || '@mail.example.net',
            'Customer ' || cast(j as varchar) || ' (renamed)',
            created + {seconds(str(10 * DAY))},
            {at("app_db", "day + 10")}
        from base where j % 5 = 0 and day + 10 <= {last}
    """
    return {
        "raw_shop_api.orders": orders_select(dialect, scale, n, orders),
        "raw_payments_files.payments": payments_select(dialect, scale, n, payments),
        "raw_app_db.customers": customers_select(dialect, scale, str(scale.customers), customers),
        "raw_app_db.products": products_select(dialect, scale, loads),
    }


def change_selects(dialect: Dialect, scale: Scale, change: int, load_ids: dict[str, str]) -> dict[str, str]:
    """Change number `change` (1, 2, ...): 1 % of the orders get a new version - half later than their
    latest, half late (older than their latest, newer than the first) - plus a few new orders; 1 % of the
    customers and 1 % of the payments get a new version, and the new orders get their payment."""
    n, m = scale.orders, scale.new_orders_per_change
    upto = str(n + change * m)
    first_new = n + (change - 1) * m + 1

    def at(source: str) -> str:
        return f"'{load_ids[source]}' as load_id, to_timestamp({float(load_ids[source]):.6f}) as delivered_at"

    orders = f"""
        select base.*, 'shipped' as status, created + {seconds(f"{2 * DAY} + 60 * {change}")} as updated,
            {at("shop_api")}
        from base where i <= {n} and i % 200 = {10 * change}
        union all
        select base.*, 'paid', created + {seconds(f"1800 + {change}")}, {at("shop_api")}
        from base where i <= {n} and i % 200 = {10 * change + 1}
        union all
        select base.*, 'placed', created, {at("shop_api")} from base where i >= {first_new}
    """
    payments = f"""
        select base.*, 'refunded' as status, paid + {seconds(f"{5 * DAY} + {change}")} as updated,
            {at("payments_files")}
        from base where i <= {n} and i % 100 = {(10 * change + 7) % 100}
        union all
        select base.*, 'succeeded', paid, {at("payments_files")} from base where i >= {first_new}
    """
    customers = f"""
        select
            base.*,
            'customer.' || cast(j as varchar) || '.v{change}@mail.example.net' as email,
            'Customer ' || cast(j as varchar) || ' v{change}' as full_name,
            created + {seconds(f"{30 * DAY} + {change}")} as updated,
            {at("app_db")}
        from base where j % 100 = {(10 * change + 3) % 100}
    """
    return {
        "raw_shop_api.orders": orders_select(dialect, scale, upto, orders),
        "raw_payments_files.payments": payments_select(dialect, scale, upto, payments),
        "raw_app_db.customers": customers_select(dialect, scale, str(scale.customers), customers),
    }


# -- the warehouse --------------------------------------------------------------------------------


@contextlib.contextmanager
def cursor(settings: Settings, read_only: bool = False) -> Iterator[Any]:
    with connect(settings, read_only=read_only) as conn:
        cur = conn.cursor()
        if settings.target == "postgres" and not read_only:
            cur.execute("set work_mem = '256MB'")  # the bulk inserts' sorts; reads keep the server's defaults
        yield cur


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with cursor(settings, read_only=True) as cur:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def scalar(settings: Settings, sql: str) -> Any:
    return rows(settings, sql)[0][0]


def columns(cur: Any, relation: str) -> list[tuple[str, bool]]:
    schema, table = relation.split(".")
    cur.execute(
        "select column_name, is_nullable from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
    )
    found = [(str(name), str(nullable).upper() == "YES") for name, nullable in cur.fetchall()]
    if not found:
        raise RuntimeError(f"{relation} does not exist: did the tiny real load run?")
    return found


def provided_columns(cur: Any, select_sql: str) -> list[str]:
    """The output names of a synthetic SELECT, as the warehouse sees them."""
    cur.execute(f"select * from ({select_sql}) as synthetic limit 0")
    names = [str(column[0]) for column in cur.description]
    cur.fetchall()
    return names


def insert_rows(cur: Any, relation: str, select_sql: str) -> int:
    """Insert a synthetic SELECT's rows, column for column as the real table has them (all of them)."""
    real = columns(cur, relation)
    given = provided_columns(cur, select_sql)
    unknown = sorted(set(given) - {name for name, _ in real})
    if unknown:
        raise RuntimeError(f"{relation}: the synthetic rows have columns the real table lacks: {unknown}")
    missing = [name for name, _ in real if name not in given]
    required = [name for name, nullable in real if name in missing and not nullable]
    if required:
        raise RuntimeError(f"{relation}: the real table has NOT NULL columns the synthetic rows lack: {required}")
    if missing:
        log(f"{relation}: columns {missing} are NULL in the synthetic rows")
    names = [name for name, _ in real]
    select_list = ", ".join(f'"{name}"' if name in given else "null" for name in names)
    cur.execute(
        f"insert into {relation} ({', '.join(f'{chr(34)}{n}{chr(34)}' for n in names)}) "
        f"select {select_list} from ({select_sql}) as synthetic"
    )
    cur.execute(f"select count(*) from {relation}")
    return int(cur.fetchone()[0])


def insert_loads(cur: Any, source: str, template_id: str, load_id_sql: str, inserted_at_sql: str, domain: str) -> None:
    """Completed loads in raw_<source>._dlt_loads: copies of the real load's row with another id."""
    relation = f"raw_{source}._dlt_loads"
    names = [name for name, _ in columns(cur, relation)]
    values = {"load_id": load_id_sql, "status": "0", "inserted_at": inserted_at_sql}
    select_list = ", ".join(values.get(name, f'template."{name}"') for name in names)
    cur.execute(
        f"insert into {relation} ({', '.join(names)}) select {select_list} "
        f"from {domain} cross join (select * from {relation} where load_id = '{template_id}') as template"
    )


def real_load_ids(settings: Settings) -> dict[str, str]:
    return {
        source: str(scalar(settings, f"select max(load_id) from raw_{source}._dlt_loads where status = 0"))
        for source in SOURCES
    }


def raw_counts(settings: Settings) -> dict[str, int]:
    relations = [f"raw_{source}.{table}" for source, tables in RAW_TABLES.items() for table in tables]
    return {relation: int(scalar(settings, f"select count(*) from {relation}")) for relation in relations}


def refresh_raw_indexes(settings: Settings) -> str:
    """What the harness does after each load: the raw indexes (PostgreSQL) and fresh planner statistics."""
    if settings.target != "postgres":
        return "none (DuckDB)"
    try:
        from loaders.indexes import ensure_raw_indexes
    except ImportError:
        ensure_raw_indexes = None
    if ensure_raw_indexes is not None:
        for source in SOURCES:
            ensure_raw_indexes(settings, source)
        return "loaders.indexes.ensure_raw_indexes"
    with cursor(settings) as cur:  # the same indexes, by hand, when the loaders do not create them
        for source, tables in RAW_TABLES.items():
            for table in tables:
                for column in (NATURAL_KEYS[table], "_dlt_load_id"):
                    cur.execute(
                        f'create index if not exists "{table}__{column}" on raw_{source}."{table}" ("{column}")'
                    )
                cur.execute(f'analyze raw_{source}."{table}"')
    return "bench fallback (natural key, _dlt_load_id)"


def steady_state(settings: Settings) -> None:
    with connect(settings, read_only=False) as conn:
        if settings.target == "postgres":
            conn.cursor().execute("vacuum analyze")
        else:
            conn.execute("checkpoint")


# -- timing ----------------------------------------------------------------------------------------


def postmaster_pid(settings: Settings) -> int | None:
    """The local server's postmaster (its exited backends' CPU accrues to it), or None if not readable."""
    if settings.target != "postgres":
        return None
    try:
        backend = int(scalar(settings, "select pg_backend_pid()"))
        time.sleep(0.2)
        stat = Path(f"/proc/{backend}/stat").read_text() if Path(f"/proc/{backend}/stat").exists() else None
    except Exception:
        return None
    if stat is None:  # the backend is gone already: read the postmaster.pid instead
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def postmaster_from_datadir(settings: Settings) -> int | None:
    try:
        data_dir = scalar(settings, "show data_directory")
        return int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    except Exception:
        return None


def process_tree_cpu(pid: int | None) -> float | None:
    """utime + stime + cutime + cstime of a process: its own CPU and that of its reaped children."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(value) for value in fields[11:15]) / ticks


STATEMENT_MIN_MS = 250


def enable_statement_log(settings: Settings) -> Path | None:
    """Log every statement of this database slower than STATEMENT_MIN_MS, when the server's log is a local
    file this process can read (the throwaway server's); returns that file."""
    if settings.target != "postgres":
        return None
    try:
        data_dir = Path(scalar(settings, "show data_directory"))
        log_file = data_dir.parent / "server.log"  # where tests.support.postgres starts the server's log
        if not log_file.is_file():
            return None
        with cursor(settings) as cur:
            cur.execute("select current_database()")
            database = cur.fetchone()[0]
            cur.execute(f'alter database "{database}" set log_min_duration_statement = {STATEMENT_MIN_MS}')
        return log_file
    except Exception as exc:
        log(f"no statement log: {exc}")
        return None


def slow_statements(log_file: Path, offset: int) -> list[tuple[str, str, float]]:
    """(dbt node, statement kind, seconds) of the logged statements since `offset`, slowest first."""
    import re

    with open(log_file, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    entries = re.split(r"\n(?=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", text)
    found = []
    for entry in entries:
        match = re.search(r"duration: ([0-9.]+) ms\s+(?:statement|execute [^:]*): (.*)", entry, re.S)
        if not match:
            continue
        seconds, sql = float(match.group(1)) / 1000, match.group(2)
        node = re.search(r'"node_id": "([^"]+)"', sql)
        body = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
        lock = "pg_advisory_xact_lock" in body
        what = "writer lock wait" if lock else " ".join(body.split()[:4]).lower()[:60]
        found.append((node.group(1).split(".")[-1] if node else "?", what, round(seconds, 2)))
    return sorted(found, key=lambda entry: -entry[2])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Build:
    label: str
    args: list[str]
    wall_s: float
    cpu_dbt_s: float
    cpu_server_s: float | None
    returncode: int
    models_built: int
    models_failed: int
    tests_passed: int
    tests_failed: int
    model_s: float = 0.0
    test_s: float = 0.0
    top_nodes: list[tuple[str, str, float]] = field(default_factory=list)
    # PostgreSQL: the slowest statements (node, what, s) from the server log, lock waits apart
    statements: list[tuple[str, str, float]] = field(default_factory=list)
    lock_wait_s: float | None = None
    load_average: float = 0.0  # the machine's 1-min load average at the end (it is shared; wall times vary)

    @property
    def cpu_s(self) -> float:
        return self.cpu_dbt_s + (self.cpu_server_s or 0.0)


def target_path() -> Path:
    return Path(os.environ["DBT_TARGET_PATH"])


def dbt(settings: Settings, args: list[str], extra: list[str]) -> Any:
    from loaders.ops.dbt import run_dbt

    return run_dbt(settings, [*args, *extra])


def timed_build(ctx: Context, label: str, args: list[str], env: dict[str, str] | None = None) -> Build:
    steady_state(ctx.settings)
    if ctx.postmaster is not None:
        time.sleep(1.0)  # the steady-state session's backend is reaped before the baseline
    server_before = process_tree_cpu(ctx.postmaster)
    log_offset = ctx.server_log.stat().st_size if ctx.server_log is not None else 0
    cpu_before = children_cpu()
    log(f"{label}: dbt {' '.join(args)}")
    started = time.monotonic()
    with environ(env or {}):
        outcome = dbt(ctx.settings, args, ctx.dbt_extra)
    wall = time.monotonic() - started
    cpu = children_cpu() - cpu_before
    if ctx.postmaster is not None:
        time.sleep(1.0)  # let the postmaster reap the run's backends
    server_after = process_tree_cpu(ctx.postmaster)
    server = None if server_before is None or server_after is None else server_after - server_before
    build = Build(
        label,
        args,
        round(wall, 2),
        round(cpu, 2),
        None if server is None else round(server, 2),
        outcome.returncode,
        outcome.models_built,
        outcome.models_failed,
        outcome.tests_passed,
        outcome.tests_failed,
    )
    build.load_average = round(os.getloadavg()[0], 1)
    if ctx.server_log is not None:
        statements = slow_statements(ctx.server_log, log_offset)
        build.lock_wait_s = round(sum(s for _, what, s in statements if what == "writer lock wait"), 2)
        build.statements = [entry for entry in statements if entry[1] != "writer lock wait"][:15]
    results = target_path() / "run_results.json"
    if results.exists():
        nodes = [
            (r["unique_id"], r["status"], float(r.get("execution_time") or 0.0))
            for r in json.loads(results.read_text()).get("results", [])
        ]
        build.model_s = round(sum(s for uid, _, s in nodes if uid.startswith("model.")), 2)
        build.test_s = round(sum(s for uid, _, s in nodes if uid.split(".")[0] in ("test", "unit_test")), 2)
        build.top_nodes = [(uid, status, round(s, 2)) for uid, status, s in sorted(nodes, key=lambda n: -n[2])[:12]]
        failed = [(uid, status) for uid, status, _ in nodes if status in ("error", "fail", "skipped")]
        if failed:
            log(f"{label}: not ok: {failed}")
    log(
        f"{label}: wall {build.wall_s}s, CPU dbt {build.cpu_dbt_s}s server {build.cpu_server_s}s,"
        f" rc {outcome.returncode}"
    )
    return build


# -- plans -----------------------------------------------------------------------------------------


@dataclass
class Scan:
    relation: str
    node: str
    rows_read: int
    rows_out: int
    loops: int
    detail: str
    table_rows: int = 0

    @property
    def share(self) -> float:
        return self.rows_read / self.table_rows if self.table_rows else 0.0


def compiled_sql(ctx: Context, model: str) -> str:
    outcome = dbt(ctx.settings, ["compile", "--select", model], ctx.dbt_extra)
    if outcome.returncode != 0:
        raise RuntimeError(f"dbt compile --select {model} failed")
    found = list((target_path() / "compiled").rglob(f"{model}.sql"))
    if len(found) != 1:
        raise RuntimeError(f"compiled SQL of {model}: found {found}")
    return found[0].read_text().strip().rstrip(";")


def explain_duckdb(settings: Settings, sql: str, folder: Path) -> tuple[str, list[Scan], float, int]:
    """EXPLAIN ANALYZE by DuckDB's profiler (JSON), rendered as an indented tree: the box-drawn form of
    the same profile is thousands of characters wide."""
    profile = folder / f"profile-{uuid.uuid4().hex[:8]}.json"
    with cursor(settings, read_only=True) as cur:
        cur.execute("set enable_profiling = 'json'")
        cur.execute(f"set profiling_output = '{profile}'")
        cur.execute(sql)
        result_rows = len(cur.fetchall())
    tree = json.loads(profile.read_text())
    scans: list[Scan] = []
    lines: list[str] = []

    def clip(value: Any) -> str:
        text = " ".join(str(value).split())
        return text if len(text) <= 240 else f"{text[:240]}... ({len(text)} chars)"

    def walk(node: dict[str, Any], depth: int) -> None:
        kind = node.get("type") or node.get("operator_type") or "?"
        info = node.get("extra_info") or {}
        out = int(node.get("intermediate_rows", node.get("operator_cardinality", 0)) or 0)
        metrics = f"rows {out:,}"
        if "rows_scanned" in node:
            metrics += f", scanned {int(node['rows_scanned']):,}"
            metrics += f", row groups {node.get('row_groups_scanned')}/{node.get('total_row_groups_to_scan')}"
        metrics += f", {1000 * float(node.get('timing', node.get('operator_timing', 0)) or 0):.1f} ms"
        pad = "  " * depth
        lines.append(f"{pad}{kind} [{metrics}]")
        for key, value in info.items():
            if key != "Estimated Cardinality":
                lines.append(f"{pad}    {key}: {clip(value)}")
        if kind in ("TABLE_SCAN", "SEQ_SCAN"):
            table = str(info.get("Table", "?")).split(".", 1)[-1]  # drop the catalog
            detail = "; ".join(
                f"{key}: {clip(info[key])}" for key in ("Type", "Filters", "Dynamic Filters") if info.get(key)
            )
            if node.get("row_groups_scanned") is not None:
                detail += f"; row groups {node.get('row_groups_scanned')}/{node.get('total_row_groups_to_scan')}"
            scans.append(Scan(table, "TABLE_SCAN", int(node.get("rows_scanned", out) or 0), out, 1, detail))
        for child in node.get("children", []):
            walk(child, depth + 1)

    for root in tree.get("operator") or tree.get("children") or []:
        walk(root, 0)
    query = tree.get("query") or {}
    total = float(query.get("total_time") or tree.get("latency") or 0.0)
    header = (
        f"total {total:.3f} s, cpu {float(query.get('cpu_time') or 0):.3f} s, "
        f"rows scanned {int(query.get('total_rows_scanned') or 0):,}, "
        f"row groups {query.get('total_row_groups_scanned')}/{query.get('total_row_groups_to_scan')}"
    )
    return header + "\n" + "\n".join(lines), scans, total, result_rows


def explain_postgres(settings: Settings, sql: str) -> tuple[str, list[Scan], float, int]:
    with cursor(settings, read_only=True) as cur:
        cur.execute(f"explain (analyze, buffers) {sql}")
        text = "\n".join(str(row[0]) for row in cur.fetchall())
        cur.execute(f"explain (analyze, buffers, verbose, format json) {sql}")
        plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    plan = plan[0]
    scans: list[Scan] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node.get("Node Type", "")
        if "Scan" in kind and node.get("Relation Name"):
            loops = int(node.get("Actual Loops", 1))
            out = int(node.get("Actual Rows", 0)) * loops
            removed = (
                int(node.get("Rows Removed by Filter", 0)) + int(node.get("Rows Removed by Index Recheck", 0))
            ) * loops
            parts = []
            if node.get("Index Name"):
                parts.append(f"index {node['Index Name']}")
            for child in node.get("Plans", []):
                if child.get("Node Type") == "Bitmap Index Scan":
                    parts.append(f"bitmap index {child.get('Index Name')} ({child.get('Index Cond', '')})")
            for key in ("Index Cond", "Recheck Cond", "Filter"):
                if node.get(key):
                    parts.append(f"{key}: {node[key]}")
            parts.append(f"buffers hit {node.get('Shared Hit Blocks', 0)} read {node.get('Shared Read Blocks', 0)}")
            if removed:
                parts.append(f"rows removed {removed}")
            scans.append(
                Scan(f"{node.get('Schema')}.{node['Relation Name']}", kind, out + removed, out, loops, "; ".join(parts))
            )
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return text, scans, float(plan.get("Execution Time", 0.0)) / 1000, int(plan["Plan"].get("Actual Rows", 0))


def excluded_plans(ctx: Context, names: list[str]) -> dict[str, str]:
    """PostgreSQL's plan (EXPLAIN, not run) of each excluded test as the last `dbt test` compiled it."""
    if ctx.settings.target != "postgres":
        return {}
    plans = {}
    for name in names:
        found = list((target_path() / "compiled").rglob(f"{name}.sql"))
        if len(found) == 1:
            plans[name] = "\n".join(row[0] for row in rows(ctx.settings, "explain " + found[0].read_text()))
    return plans


@dataclass
class Explained:
    model: str
    seconds: float
    scans: list[Scan]
    plan: str
    sql: str
    rows: int = 0


def explain_model(ctx: Context, model: str) -> Explained:
    sql = compiled_sql(ctx, model)
    log(f"EXPLAIN ANALYZE {model} ({ctx.settings.target})")
    if ctx.settings.target == "duckdb":
        plan, scans, total, result_rows = explain_duckdb(ctx.settings, sql, ctx.folder)
    else:
        plan, scans, total, result_rows = explain_postgres(ctx.settings, sql)
    sizes: dict[str, int] = {}
    for scan in scans:
        if scan.relation not in sizes:
            try:
                sizes[scan.relation] = int(scalar(ctx.settings, f"select count(*) from {scan.relation}"))
            except Exception:
                sizes[scan.relation] = 0
        scan.table_rows = sizes[scan.relation]
    return Explained(model, round(total, 3), scans, plan, sql, result_rows)


# -- one target ------------------------------------------------------------------------------------


@dataclass
class Context:
    settings: Settings
    folder: Path
    dbt_extra: list[str]
    postmaster: int | None = None
    server_log: Path | None = None


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def compare_project(project_dir: str, folder: Path) -> Iterator[None]:
    """dbt invocations of another copy of the dbt project, with their own artifacts."""
    target = folder / f"target-{Path(project_dir).name}"
    with environ({"ELT_PROJECT_DIR": str(Path(project_dir).resolve()), "DBT_TARGET_PATH": str(target)}):
        yield


def compare_label(project_dir: str) -> str:
    return f"compare {Path(project_dir).name}"


@contextlib.contextmanager
def fresh_warehouse(target: str, folder: Path, keep: bool) -> Iterator[dict[str, str]]:
    """The environment of a fresh warehouse: ELT_* and, for PostgreSQL, the PG* of a fresh database."""
    if target == "duckdb":
        yield {"ELT_TARGET": "duckdb", "ELT_DUCKDB_PATH": str(folder / "warehouse.duckdb")}
        return
    with contextlib.ExitStack() as stack:
        if os.environ.get("PGHOST"):
            server = {
                name: os.environ[name]
                for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
                if name in os.environ
            }
        else:
            from tests.support.postgres import throwaway_postgres

            log("no PGHOST: starting a throwaway PostgreSQL server")
            server = stack.enter_context(throwaway_postgres())
        import psycopg2

        name = f"elt_bench_{uuid.uuid4().hex[:10]}"
        admin = psycopg2.connect(
            host=server["PGHOST"],
            port=server.get("PGPORT", "5432"),
            user=server.get("PGUSER"),
            password=server.get("PGPASSWORD") or None,
            dbname=server.get("PGDATABASE", "postgres"),
        )
        admin.autocommit = True
        admin.cursor().execute(f'create database "{name}"')
        log(f"PostgreSQL database {name} on {server['PGHOST']}:{server.get('PGPORT', '5432')}")
        try:
            yield {**server, "PGDATABASE": name, "ELT_TARGET": "postgres"}
        finally:
            if not keep:
                admin.cursor().execute(f'drop database if exists "{name}" with (force)')
            admin.close()


def tiny_real_load(settings: Settings, folder: Path) -> None:
    """dlt creates the raw datasets as production has them: a few simulated records, loaded for real."""
    from loaders.ops.load import load_sources
    from loaders.simulate import ApiServer, SimulationConfig, generate

    root = folder / "sources"
    config = SimulationConfig(customers=5, new_customers_per_day=1, products=3, orders_per_day=5, damaged_rate=0.0)
    generate(root, config, through_day=1)
    token = secrets.token_urlsafe(16)
    with ApiServer(root, token=token) as api:
        sources_env = {
            "SOURCES__SHOP_API__BASE_URL": api.base_url,
            "SOURCES__SHOP_API__TOKEN": token,
            "SOURCES__APP_DB__CREDENTIALS": f"sqlite:///{root / 'app.db'}",
            "SOURCES__PAYMENTS_FILES__BUCKET_URL": str(root / "payments"),
        }
        with environ(sources_env):
            outcomes = load_sources(settings, list(SOURCES))
    failed = [outcome for outcome in outcomes if outcome.error]
    if failed:
        raise RuntimeError(f"the tiny real load failed: {failed}")


def land_history(settings: Settings, scale: Scale, templates: dict[str, str]) -> Loads:
    dialect = Dialect(settings.target)
    newest_real = max(int(float(load_id)) for load_id in templates.values())
    loads = Loads(first_epoch=newest_real + 2 - (scale.history_loads - 1) * DAY, count=scale.history_loads)
    domain = f"(select cast(g.n as bigint) as b from generate_series(0, {scale.history_loads - 1}) as g(n)) as loads"
    with cursor(settings) as cur:
        for source in SOURCES:
            insert_loads(
                cur,
                source,
                templates[source],
                loads.history_id_sql(source, "b"),
                f"{loads.history_time_sql('b')} + interval '1 second'",
                domain,
            )
        for relation, select_sql in history_selects(dialect, scale, loads).items():
            started = time.monotonic()
            total = insert_rows(cur, relation, select_sql)
            log(f"history: {relation} now {total} rows ({time.monotonic() - started:.1f}s)")
    return loads


def land_change(settings: Settings, scale: Scale, change: int, templates: dict[str, str]) -> dict[str, int]:
    """One new completed load per source holding change number `change`; returns the rows it landed."""
    dialect = Dialect(settings.target)
    previous = max(float(load_id) for load_id in real_load_ids(settings).values())
    epoch = max(time.time(), previous + 1)
    load_ids = {source: f"{epoch + 0.1 * k:.6f}" for k, source in enumerate(SOURCES)}
    landed: dict[str, int] = {}
    with cursor(settings) as cur:
        for relation, select_sql in change_selects(dialect, scale, change, load_ids).items():
            source = relation.split(".")[0][4:]
            cur.execute(f"select count(*) from {relation}")
            before = int(cur.fetchone()[0])
            after = insert_rows(cur, relation, select_sql)
            landed[relation] = after - before
        for source in SOURCES:  # the load completes after its rows are in, as dlt's do
            insert_loads(
                cur,
                source,
                templates[source],
                f"'{load_ids[source]}'",
                f"to_timestamp({float(load_ids[source])})",
                "(select 1 as one) as one_load",
            )
    log(f"change {change}: load ids {load_ids}, rows {landed}")
    return landed


def run_target(target: str, scale: Scale, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"elt-bench-{target}-"))
    log(f"{target}: working folder {folder}")
    result: dict[str, Any] = {"target": target, "orders": scale.orders, "history_loads": scale.history_loads}
    try:
        with fresh_warehouse(target, folder, args.keep) as warehouse_env:
            env = {
                **warehouse_env,
                "ELT_STATE_DIR": str(folder / "state"),
                "DBT_TARGET_PATH": str(folder / "target"),
                "DBT_LOG_PATH": str(folder / "logs"),
                "RUNTIME__LOG_LEVEL": "ERROR",
            }
            if args.project_dir:
                env["ELT_PROJECT_DIR"] = str(Path(args.project_dir).resolve())
            with environ(env):
                result.update(measure(target, scale, folder, args))
    finally:
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def measure(target: str, scale: Scale, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_env()
    extra = ["--vars", f"{{lookback_versions: {args.lookback_versions}}}"] if args.lookback_versions is not None else []
    ctx = Context(settings, folder, extra)
    out: dict[str, Any] = {"project_dir": str(settings.project_dir), "dbt_extra": extra}

    log("tiny real load (simulator -> dlt)")
    tiny_real_load(settings, folder)
    templates = real_load_ids(settings)
    started = time.monotonic()
    land_history(settings, scale, templates)
    out["indexes"] = refresh_raw_indexes(settings)
    out["history_seconds"] = round(time.monotonic() - started, 1)
    out["raw_rows_history"] = raw_counts(settings)
    if target == "postgres":
        ctx.postmaster = postmaster_from_datadir(settings) or postmaster_pid(settings)
        ctx.server_log = enable_statement_log(settings)
        out["server"] = {
            "version": scalar(settings, "select version()"),
            **{s: scalar(settings, f"show {s}") for s in ("shared_buffers", "work_mem", "effective_cache_size")},
            "server_cpu_measured": ctx.postmaster is not None,
        }
    else:
        import duckdb

        out["server"] = {
            "version": f"duckdb {duckdb.__version__}",
            "threads": scalar(settings, "select current_setting('threads')"),
        }

    # Unit tests are left out as the test suite's builds leave them out: fixtures of constant size (not
    # what this measures), and one of them reads `this`, which a fresh warehouse does not have yet.
    build = ["build", "--exclude-resource-type", "unit_test"]
    if args.exclude:
        build += ["--exclude", *args.exclude]
    out["excluded"] = list(args.exclude)
    builds = [timed_build(ctx, "initial full refresh", [*build, "--full-refresh"])]
    out["change_1_rows"] = land_change(settings, scale, 1, templates)
    refresh_raw_indexes(settings)
    out["raw_rows"] = raw_counts(settings)
    builds.append(timed_build(ctx, "incremental", build))
    builds.append(timed_build(ctx, "full refresh", [*build, "--full-refresh"]))
    if args.exclude:
        timeout = {"PGOPTIONS": f"-c statement_timeout={args.test_timeout}s"} if target == "postgres" else {}
        out["test_timeout_s"] = args.test_timeout if timeout else None
        builds.append(timed_build(ctx, "excluded tests alone", ["test", "--select", *args.exclude], timeout))
        out["excluded_plans"] = excluded_plans(ctx, args.exclude)
        for project in args.compare_project:
            with compare_project(project, folder):
                alt = Context(Settings.from_env(), folder, extra, ctx.postmaster, ctx.server_log)
                label = f"excluded tests alone ({compare_label(project)})"
                builds.append(timed_build(alt, label, ["test", "--select", *args.exclude], timeout))
                plans = excluded_plans(alt, args.exclude)
                out["excluded_plans"].update({f"{name} ({compare_label(project)})": p for name, p in plans.items()})
    out["builds"] = [asdict(build) | {"cpu_s": round(build.cpu_s, 2)} for build in builds]

    out["change_2_rows"] = land_change(settings, scale, 2, templates)
    refresh_raw_indexes(settings)
    steady_state(settings)
    explained = []
    for model, upstream in EXPLAINED.items():
        if upstream:
            outcome = dbt(settings, ["run", "--select", *upstream], extra)
            if outcome.returncode != 0:
                raise RuntimeError(f"dbt run --select {' '.join(upstream)} failed")
        explained.append(explain_model(ctx, model))
        for project in args.compare_project:  # the same SELECT as another copy of the project writes it
            with compare_project(project, folder):
                alternative = explain_model(Context(Settings.from_env(), folder, extra), model)
            alternative.model += f" ({compare_label(project)})"
            explained.append(alternative)
    out["explained"] = [
        {
            "model": e.model,
            "seconds": e.seconds,
            "rows": e.rows,
            "scans": [asdict(s) | {"share": round(s.share, 4)} for s in e.scans],
        }
        for e in explained
    ]
    write_plans(target, scale, out, explained)
    return out


# -- reports ---------------------------------------------------------------------------------------


def write_plans(target: str, scale: Scale, out: dict[str, Any], explained: list[Explained]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# EXPLAIN ANALYZE of the incremental SELECT — {target}, {scale.orders} orders",
        f"# {out['server']}",
        f"# raw rows before the explained change: {out['raw_rows']}",
        f"# explained change load (2nd 1 % change): {out['change_2_rows']}",
        "# each SELECT is the one `dbt compile` renders for the incremental run, explained just before the",
        "# model consumed that load (the models it judges against had run on it, as in a build).",
        "",
    ]
    for name, plan in out.get("excluded_plans", {}).items():
        lines += [f"## test {name} (left out of the timed builds): EXPLAIN, not run", "", plan, "", ""]
    for e in explained:
        lines += [f"## {e.model}: {e.seconds} s, {e.rows:,} rows", "", "### scans (rows read / table rows)", ""]
        for s in e.scans:
            lines.append(
                f"- {s.relation} {s.node}: read {s.rows_read:,} of {s.table_rows:,} ({100 * s.share:.1f} %),"
                f" out {s.rows_out:,}, loops {s.loops} — {s.detail}"
            )
        lines += ["", "### plan", "", e.plan, "", "### compiled SQL", "", e.sql, "", ""]
    (RESULTS_DIR / f"explain_{target}.txt").write_text("\n".join(lines))


def json_path(label: str, target: str) -> Path:
    return RESULTS_DIR / f"incremental_{label}_{target}.json"


def fmt_rows(n: int) -> str:
    return f"{n:,}"


def scans_cell(result: dict[str, Any], model: str, raw: str) -> str:
    for e in result.get("explained", []):
        if e["model"] == model:
            cells = [
                f"{s['node']}: {fmt_rows(s['rows_read'])} ({100 * s['share']:.1f} %)"
                for s in e["scans"]
                if s["relation"] == raw
            ]
            return "<br>".join(cells) or "no scan"
    return "n/a"


def markdown(label: str) -> str:
    results = [
        json.loads(json_path(label, t).read_text()) for t in ("duckdb", "postgres") if json_path(label, t).exists()
    ]
    head = (
        "| target | orders | raw order rows | full refresh wall / CPU s | incremental wall / CPU s "
        "| ratio incr/full wall (CPU) | raw_shop_api.orders rows read by incremental int_orders (per scan node) "
        "| raw_payments_files.payments rows read by incremental int_payments (per scan node) |"
    )
    lines = [
        f"# Incremental vs full refresh at {label} orders, 1 % change",
        "",
        "Generated by `make bench-explain ORDERS=...` (`bench/explain_incremental.py`); plans in "
        "`explain_<target>.txt`. CPU = the dbt process tree (getrusage) + on PostgreSQL the server's "
        "backends (postmaster's reaped children). Rows read = rows a scan node produced plus the rows "
        "its filter removed (PostgreSQL), or DuckDB's `rows_scanned`; % of the table's rows.",
        "",
        head,
        "|" + "---|" * 8,
    ]
    for r in results:
        builds = {b["label"]: b for b in r["builds"]}
        full, incr = builds["full refresh"], builds["incremental"]
        lines.append(
            f"| {r['target']} | {fmt_rows(r['orders'])} | {fmt_rows(r['raw_rows']['raw_shop_api.orders'])} "
            f"| {full['wall_s']:.1f} / {full['cpu_s']:.1f} | {incr['wall_s']:.1f} / {incr['cpu_s']:.1f} "
            f"| {incr['wall_s'] / full['wall_s']:.3f} ({incr['cpu_s'] / full['cpu_s']:.3f}) "
            f"| {scans_cell(r, 'int_orders__versions', 'raw_shop_api.orders')} "
            f"| {scans_cell(r, 'int_payments__versions', 'raw_payments_files.payments')} |"
        )
    for r in results:
        lines += ["", f"## {r['target']}", ""]
        lines.append(f"- server: {r['server']}")
        lines.append(f"- raw rows (history + tiny real load + change 1): {r['raw_rows']}")
        lines.append(
            f"- change 1 (timed incremental): {r['change_1_rows']}; change 2 (explained): {r['change_2_rows']}"
        )
        lines.append(
            f"- raw indexes: {r['indexes']}; history of {r['history_loads']} loads landed in {r['history_seconds']} s"
        )
        if r.get("excluded"):
            timeout = f", statement_timeout {r['test_timeout_s']} s" if r.get("test_timeout_s") else ""
            lines.append(
                f"- left out of the timed builds and run alone after them{timeout}: "
                + ", ".join(f"`{name}`" for name in r["excluded"])
            )
        if r.get("dbt_extra"):
            lines.append(f"- dbt extra arguments: {' '.join(r['dbt_extra'])}")
        lines += [
            "",
            "| build | wall s | CPU dbt s | CPU server s | models s | tests s | rc | load avg |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for b in r["builds"]:
            server = "n/a" if b["cpu_server_s"] is None else f"{b['cpu_server_s']:.1f}"
            lines.append(
                f"| {b['label']} | {b['wall_s']:.1f} | {b['cpu_dbt_s']:.1f} | {server} | {b['model_s']:.1f} "
                f"| {b['test_s']:.1f} | {b['returncode']} | {b.get('load_average', '')} |"
            )
        for b in r["builds"]:
            if b["label"] in ("incremental", "full refresh") and b.get("statements"):
                lines += [
                    "",
                    f"Slowest statements, {b['label']} (server log; {b['lock_wait_s']:.1f} s in all waiting for the "
                    "writer lock, which the node times above include): "
                    + ", ".join(f"`{node}` {what} {sec:.1f}s" for node, what, sec in b["statements"][:10]),
                ]
        for b in r["builds"]:
            if b["label"] in ("incremental", "full refresh"):
                lines += [
                    "",
                    f"Slowest nodes, {b['label']}: "
                    + ", ".join(f"`{uid.split('.')[-1]}` {s:.1f}s" for uid, _, s in b["top_nodes"][:8]),
                ]
        for e in r["explained"]:
            lines += ["", f"Scans of the incremental `{e['model']}` ({e['seconds']} s, {e.get('rows', 0):,} rows):", ""]
            for s in e["scans"]:
                flag = " **full scan**" if s["share"] > 0.5 and s["table_rows"] > 10000 else ""
                lines.append(
                    f"- `{s['relation']}` {s['node']}: read {fmt_rows(s['rows_read'])} of {fmt_rows(s['table_rows'])}"
                    f" ({100 * s['share']:.1f} %){flag}"
                )
    notes = RESULTS_DIR / f"incremental_{label}.notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    lines.append(f"\n<sub>{platform.platform()}, {os.cpu_count()} CPUs</sub>")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    global RESULTS_DIR
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--target", choices=("duckdb", "postgres", "both"), default="both")
    parser.add_argument("--history-loads", type=int, default=100, help="synthetic completed loads the history spans")
    parser.add_argument(
        "--lookback-versions", type=int, default=None, help="dbt var lookback_versions (project default)"
    )
    parser.add_argument("--project-dir", help="another copy of the dbt project (ELT_PROJECT_DIR), to try a change")
    parser.add_argument(
        "--compare-project",
        action="append",
        default=[],
        help="another copy of the dbt project (a fix to try): its incremental SELECTs are explained beside the "
        "project's on the same state, and its version of the excluded tests is timed too",
    )
    parser.add_argument("--label", help="results file label (default from --orders, e.g. 1M)")
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=list(SLOW_TESTS),
        help="dbt nodes left out of the timed builds and timed alone after them (default: %(default)s; "
        "--exclude with no name runs the plain build)",
    )
    parser.add_argument("--test-timeout", type=int, default=300, help="statement timeout (s) of the excluded, PG")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and working folder")
    parser.add_argument("--results-dir", type=Path, default=None, help="where plans and figures go (bench/results)")
    args = parser.parse_args(argv)
    if args.results_dir is not None:
        RESULTS_DIR = args.results_dir.resolve()
    scale = Scale(args.orders, args.history_loads)
    if args.orders < args.history_loads * 10:
        parser.error("--orders must be at least 10 x --history-loads")
    label = args.label or scale.label
    targets = ["duckdb", "postgres"] if args.target == "both" else [args.target]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for target in targets:  # one after the other: the machine is shared
        result = run_target(target, scale, args)
        json_path(label, target).write_text(json.dumps(result, indent=1, default=str) + "\n")
        (RESULTS_DIR / f"incremental_{label}.md").write_text(markdown(label))
    text = markdown(label)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
