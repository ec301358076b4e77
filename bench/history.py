"""The synthetic raw history the incremental bench runs on: shaped like the loaders' rows, landed by SQL.

`history_selects` writes `--history-loads` days of raw rows (one completed load a day per source, each about
1 % of the rows); `change_selects` one 1 % change (new versions, half later and half late, and a few new
orders). `land_history` and `land_change` insert them, with their `_dlt_loads` rows copied from the tiny
real load's, into the raw tables dlt created (`tiny_real_load`).

Invariant: a synthetic row fills every column of the real table (checked against information_schema,
`insert_rows`), and its load completes after its rows are in, as dlt's do.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import environ, label, log
from bench.sources import sources_env
from bench.warehouse import cursor, scalar
from loaders.core.registry import raw_dataset
from loaders.core.settings import Settings
from loaders.warehouse import dialect

# The raw tables this benchmark fills, per dlt source.
RAW_TABLES = {"shop_api": ("orders",), "app_db": ("customers", "products"), "payments_files": ("payments",)}
SOURCES = tuple(RAW_TABLES)
# A distinct fractional part per source, so no two sources share a load id (as dlt's never do).
LOAD_ID_FRACTION = {"shop_api": "100001", "app_db": "200002", "payments_files": "300003"}
ORDERS_EPOCH = "2024-01-01 00:00:00"
CUSTOMERS_EPOCH = "2023-01-01 00:00:00"
PRODUCTS_EPOCH = "2023-06-01 00:00:00"
DAY = 86400


# -- scale ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """The history's size: `orders` orders (a tenth as many customers) over `history_loads` daily loads."""

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
        return label(self.orders)


# -- SQL that differs between the two warehouses -------------------------------------------------------


@dataclass(frozen=True)
class Spelling:
    """How DuckDB (`name` duckdb) and PostgreSQL spell a timestamp as text."""

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


def json_array(element: str) -> str:
    parts = [f"{element}1"]
    parts += [f"case when n_items >= {k} then ', ' || {element}{k} else '' end" for k in (2, 3)]
    return "'[' || " + " || ".join(parts) + " || ']'"


def versioned_select(base: str, versions: str, texts: str, columns: str, seq: str, record: str, last: str) -> str:
    """Raw rows of versioned records, as the loaders land them: `versions` selects from `base` adding
    status, updated, load_id and delivered_at; `texts` are the spelled-out fields `columns` and `record`
    (the `_record` JSON) read; `last` is the source's own metadata column (`_cursor_at`, `_source_file`)."""
    return f"""
    with base as ({base}),
    versions as ({versions}),
    texts as (select versions.*, {texts} from versions)
    select
        {columns},
        updated_text as _version,
        cast(updated as timestamp with time zone) as _version_at,
        delivered_at as _delivered_at,
        {seq} as _delivery_seq,
        {record} as _record,
        {last},
        load_id as _dlt_load_id
    from texts
    order by _dlt_load_id, _delivery_seq
    """


CURSOR_AT = "cast(updated as timestamp with time zone) as _cursor_at"


def orders_select(spelling: Spelling, scale: Scale, upto: str, versions: str) -> str:
    """Raw `orders` rows of the orders numbered up to `upto`."""
    items = [item_fields(scale, k) for k in (1, 2, 3)]
    item_columns = ", ".join(
        f"{landed} as item_landed{k}, {sent} as item_sent{k}" for k, (landed, sent) in enumerate(items, start=1)
    )
    record = (
        """'{"id": "' || order_id || '", "customer_id": "' || customer_id || '", "status": "' || status """
        """|| '", "currency": "' || currency || '", "shipping_country": "' || shipping_country """
        """|| '", "created_at": "' || created_text || '", "updated_at": "' || updated_text || '", "items": ' """
        f"""|| {json_array("item_sent")} || '}}'"""
    )
    return versioned_select(
        order_base(scale, upto),
        versions,
        f"{spelling.iso('created')} as created_text, {spelling.iso('updated')} as updated_text, {item_columns}",
        "order_id as id, customer_id, status, currency, shipping_country, created_text as created_at, "
        f"updated_text as updated_at, {json_array('item_landed')} as items",
        "i",
        record,
        CURSOR_AT,
    )


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


def payments_select(spelling: Spelling, scale: Scale, upto: str, versions: str) -> str:
    record = (
        """'{"payment_id": "' || payment_id || '", "order_id": "' || order_id || '", "amount": "' || amount """
        """|| '", "currency": "' || currency || '", "method": "' || method || '", "status": "' || status """
        """|| '", "paid_at": "' || paid_text || '", "updated_at": "' || updated_text || '"}'"""
    )
    return versioned_select(
        payment_base(scale, upto),
        versions,
        f"{spelling.iso('paid')} as paid_text, {spelling.iso('updated')} as updated_text",
        "payment_id, order_id, amount, currency, method, status, paid_text as paid_at, updated_text as updated_at",
        "i",
        record,
        f"'payments_' || {spelling.compact_date('delivered_at')} || '_01.csv' as _source_file",
    )


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


def customers_select(spelling: Spelling, scale: Scale, upto: str, versions: str) -> str:
    record = (
        """'{"id": "' || customer_id || '", "email": "' || email || '", "full_name": "' || full_name """
        """|| '", "country": "' || country || '", "created_at": "' || created_text || '", "updated_at": "' """
        """|| updated_text || '", "deleted_at": null}'"""
    )
    return versioned_select(
        customer_base(scale, upto),
        versions,
        f"{spelling.plain('created')} as created_text, {spelling.plain('updated')} as updated_text",
        "customer_id as id, email, full_name, country, created_text as created_at, updated_text as updated_at, "
        "cast(null as varchar) as deleted_at",
        "j",
        record,
        CURSOR_AT,
    )


def products_select(spelling: Spelling, scale: Scale, loads: Loads) -> str:
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
    texts as (select base.*, {spelling.plain("updated")} as updated_text from base)
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


def history_selects(spelling: Spelling, scale: Scale, loads: Loads) -> dict[str, str]:
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
        "raw_shop_api.orders": orders_select(spelling, scale, n, orders),
        "raw_payments_files.payments": payments_select(spelling, scale, n, payments),
        "raw_app_db.customers": customers_select(spelling, scale, str(scale.customers), customers),
        "raw_app_db.products": products_select(spelling, scale, loads),
    }


def change_selects(spelling: Spelling, scale: Scale, change: int, load_ids: dict[str, str]) -> dict[str, str]:
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
        "raw_shop_api.orders": orders_select(spelling, scale, upto, orders),
        "raw_payments_files.payments": payments_select(spelling, scale, upto, payments),
        "raw_app_db.customers": customers_select(spelling, scale, str(scale.customers), customers),
    }


# -- landing it ----------------------------------------------------------------------------------------


def columns(cur: Any, relation: str) -> list[tuple[str, bool]]:
    """(name, nullable) of a real table's columns, in order."""
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
    relation = f"{raw_dataset(source)}._dlt_loads"
    names = [name for name, _ in columns(cur, relation)]
    values = {"load_id": load_id_sql, "status": "0", "inserted_at": inserted_at_sql}
    select_list = ", ".join(values.get(name, f'template."{name}"') for name in names)
    cur.execute(
        f"insert into {relation} ({', '.join(names)}) select {select_list} "
        f"from {domain} cross join (select * from {relation} where load_id = '{template_id}') as template"
    )


def real_load_ids(settings: Settings) -> dict[str, str]:
    return {
        source: str(scalar(settings, f"select max(load_id) from {raw_dataset(source)}._dlt_loads where status = 0"))
        for source in SOURCES
    }


def raw_counts(settings: Settings) -> dict[str, int]:
    relations = [f"{raw_dataset(source)}.{table}" for source, tables in RAW_TABLES.items() for table in tables]
    return {relation: int(scalar(settings, f"select count(*) from {relation}")) for relation in relations}


def tiny_real_load(settings: Settings, folder: Path) -> None:
    """dlt creates the raw datasets as production has them: a few simulated records, loaded for real."""
    from loaders.ops.load import load_sources
    from loaders.simulate import ApiServer, SimulationConfig, generate

    root = folder / "sources"
    config = SimulationConfig(customers=5, new_customers_per_day=1, products=3, orders_per_day=5, damaged_rate=0.0)
    generate(root, config, through_day=1)
    token = secrets.token_urlsafe(16)
    with ApiServer(root, token=token) as api, environ(sources_env(root, api.base_url, token)):
        outcomes = load_sources(settings, list(SOURCES))
    failed = [outcome for outcome in outcomes if outcome.error]
    if failed:
        raise RuntimeError(f"the tiny real load failed: {failed}")


def land_history(settings: Settings, scale: Scale, templates: dict[str, str]) -> Loads:
    spelling = Spelling(dialect(settings).name)
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
        for relation, select_sql in history_selects(spelling, scale, loads).items():
            started = time.monotonic()
            total = insert_rows(cur, relation, select_sql)
            log(f"history: {relation} now {total} rows ({time.monotonic() - started:.1f}s)")
    return loads


def land_change(settings: Settings, scale: Scale, change: int, templates: dict[str, str]) -> dict[str, int]:
    """One new completed load per source holding change number `change`; returns the rows it landed."""
    spelling = Spelling(dialect(settings).name)
    previous = max(float(load_id) for load_id in real_load_ids(settings).values())
    epoch = max(time.time(), previous + 1)
    load_ids = {source: f"{epoch + 0.1 * k:.6f}" for k, source in enumerate(SOURCES)}
    landed: dict[str, int] = {}
    with cursor(settings) as cur:
        for relation, select_sql in change_selects(spelling, scale, change, load_ids).items():
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
