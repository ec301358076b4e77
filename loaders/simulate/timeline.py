"""The simulated shop, one day at a time: a pure state machine from (config, day) to that day's records.

Day `d` draws from its own random generator, seeded from (seed, d), and acts on the state the earlier days
left; so what happens on day `d` never depends on how far a caller simulates. Within a day, events run in
time order from an agenda. Nothing here touches the disk: `world.generate` writes what a day returns.

Day 0 is the world before the start date: the initial customers and the product catalogue. Times are naive
datetimes in UTC: at millions of records, aware ones cost noticeably more to add, compare and format.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import partial
from random import Random
from typing import Any, Generic, TypeVar

from loaders.landing.records import as_text
from loaders.simulate import catalog
from loaders.simulate.config import SimulationConfig
from loaders.simulate.defects import (
    damaged_order_body,
    damaged_payment_line,
    invalid_customer,
    invalid_order,
    invalid_payment,
    invalid_product,
    other_method,
)
from loaders.simulate.timestamps import iso_timestamp, sqlite_timestamp
from loaders.sources.app_db.records import Customer, Product
from loaders.sources.payments_files.records import PAYMENT_CSV_HEADER, Payment
from loaders.sources.shop_api.records import Order

T = TypeVar("T")

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
CENT = Decimal("0.01")
MAX_LATE_SKEW_SECONDS = 6 * 3600  # the contract's bound on how far behind a late version may be

# Shares of the shop's behaviour that are not knobs: they shape a plausible world, not a test scenario.
SAME_DAY_PAYMENT_SHARE = 0.6
FAILED_ATTEMPT_SHARE = 0.1
CUSTOMER_UPDATE_SHARE = 0.01
CUSTOMER_DELETE_SHARE = 0.002
PRODUCT_UPDATE_SHARE = 0.05
INACTIVE_PRODUCT_SHARE = 0.1
EXTRA_FIELD_SHARE = 0.05
TEXT_NUMBERS_SHARE = 0.5
CORRECTED_ROW_SHARE = 0.3
INITIAL_HISTORY_DAYS = 90


@dataclass(frozen=True, slots=True)
class Emitted(Generic[T]):
    """One record as a source shows it, with what was done to it on purpose."""

    value: T
    rule: str | None = None
    """`<table>.<reason code>` of the contract violation planted, if any."""
    damaged: bool = False
    """Unlandable: no natural key, or not a parseable record."""


@dataclass(frozen=True, slots=True)
class OrderVersion:
    body: dict[str, Any] | str
    """The API element: a dict, or JSON text when damaged."""
    visible_at: datetime
    rule: str | None
    damaged: bool
    late: bool


CsvRow = Emitted[tuple[str, ...] | str]


@dataclass(frozen=True, slots=True)
class Delivery:
    delivered_at: datetime
    rows: tuple[CsvRow, ...]
    late: bool
    redelivery: bool


@dataclass(frozen=True, slots=True)
class PaymentsFile:
    name: str
    deliveries: tuple[Delivery, ...]
    """In delivery order; a re-delivery overwrites the file in place."""

    def as_of(self, moment: datetime) -> Delivery | None:
        """The content the folder holds at `moment`, if the file has arrived by then."""
        arrived = [d for d in self.deliveries if d.delivered_at < moment]
        return arrived[-1] if arrived else None


@dataclass(frozen=True, slots=True)
class Day:
    number: int
    order_versions: list[OrderVersion]
    """In visibility order."""
    files: list[PaymentsFile]
    """The settlement files for this day's payment events, whenever they are delivered."""


@dataclass(slots=True)
class _Customer:
    id: str
    email: str
    full_name: str
    country: str
    created_at: datetime
    updated_at: datetime
    visible_day: int
    deleted_at: datetime | None = None
    row: Emitted[dict[str, Any]] = field(default_factory=lambda: Emitted({}))  # set by _emit_customer


@dataclass(slots=True)
class _Product:
    sku: str
    name: str
    category: str
    list_price: Decimal
    active: bool
    updated_at: datetime
    row: Emitted[dict[str, Any]] = field(default_factory=lambda: Emitted({}))  # set by _emit_product


@dataclass(frozen=True, slots=True)
class _Line:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(slots=True)
class _Payment:
    id: str
    order_id: str
    amount: Decimal
    currency: str
    method: str
    status: str
    paid_at: datetime
    updated_at: datetime

    def fields(self) -> dict[str, Any]:
        return {
            "payment_id": self.id,
            "order_id": self.order_id,
            "amount": self.amount,
            "currency": self.currency,
            "method": self.method,
            "status": self.status,
            "paid_at": self.paid_at,
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class _Order:
    id: str
    customer_id: str
    currency: str
    shipping_country: str
    lines: tuple[_Line, ...]
    total: Decimal
    created_at: datetime
    updated_at: datetime
    status: str = "placed"
    payment: _Payment | None = None


@dataclass(frozen=True, slots=True)
class _PaymentRow:
    truth: dict[str, Any]
    emitted: CsvRow
    payment: _Payment


@dataclass(frozen=True, slots=True)
class Weighted(Generic[T]):
    """A weighted choice with its cumulative weights computed once (`Random.choices` redoes it per call)."""

    values: tuple[T, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def of(cls, values: tuple[T, ...], weights: tuple[int, ...]) -> Weighted[T]:
        return cls(values, tuple(itertools.accumulate(weights)))

    def pick(self, rng: Random) -> T:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


COUNTRY = Weighted.of(catalog.COUNTRIES, catalog.COUNTRY_WEIGHTS)
PAYMENT_METHOD = Weighted.of(catalog.PAYMENT_METHODS, catalog.PAYMENT_METHOD_WEIGHTS)
LINE_COUNT = Weighted.of((1, 2, 3, 4), (50, 30, 15, 5))
QUANTITY = Weighted.of((1, 2, 3), (70, 22, 8))
NEXT_STATUS: dict[str, Weighted[str]] = {
    "placed": Weighted.of(("paid", "cancelled"), (85, 15)),
    "paid": Weighted.of(("shipped", "refunded"), (92, 8)),
    "shipped": Weighted.of(("delivered", "refunded"), (97, 3)),
}


def day_rng(seed: int, day: int) -> Random:
    """Day `day`'s generator: independent of every other day's, and stable across Python versions."""
    digest = hashlib.sha256(f"loaders.simulate:{seed}:{day}".encode()).digest()
    return Random(int.from_bytes(digest[:8], "big"))


def day_start(config: SimulationConfig, day: int) -> datetime:
    """Midnight opening day `day` (1-based: day 1 is `start_date`), as a naive UTC datetime."""
    return datetime.combine(config.start_date, time(0)) + (day - 1) * DAY


def stochastic_round(rng: Random, expected: float) -> int:
    """An integer count whose mean is `expected`, so small shares of small populations still happen."""
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def price_in(currency: str, eur_price: Decimal) -> Decimal:
    return (eur_price * catalog.EUR_RATES[currency]).quantize(CENT)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().replace("'", "").lower()


def _spelled(value: Any, stamp: Callable[[datetime], str]) -> Any:
    if isinstance(value, datetime):
        return stamp(value)
    return str(value) if isinstance(value, Decimal) else value


def _formatted(fields: dict[str, Any], stamp: Callable[[datetime], str]) -> dict[str, Any]:
    """Timestamps in the source's spelling and money as two-place text; everything else as it is."""
    return {key: _spelled(value, stamp) for key, value in fields.items()}


def _styled_items(items: Any, numbers_as_text: bool) -> Any:
    """Order lines with numbers as text or as JSON numbers: the contract says both arrive."""
    if not isinstance(items, list):
        return items
    if numbers_as_text:
        # OrderItem's own text rule, applied directly: a model per line would double the cost of an order.
        return [{key: as_text(value) for key, value in item.items()} for item in items]
    return [{k: float(v) if isinstance(v, Decimal) else v for k, v in item.items()} for item in items]


def payment_values(fields: dict[str, Any]) -> tuple[str, ...]:
    row = Payment(**_formatted(fields, iso_timestamp)).model_dump(mode="json")
    return tuple("" if row[column] is None else row[column] for column in PAYMENT_CSV_HEADER)


class _Agenda:
    """One day's events, run in time order; an event may schedule later ones the same day."""

    def __init__(self, rng: Random, start: datetime) -> None:
        self._rng = rng
        self._heap: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._ties = itertools.count()  # equal times run in scheduling order; actions are never compared
        self.start = start
        self.end = start + DAY

    def at(self, when: datetime, action: Callable[[datetime], None]) -> None:
        """Schedule `action`; events that would fall on a later day are the later day's business."""
        if when < self.end:
            heapq.heappush(self._heap, (when, next(self._ties), action))

    def at_random(self, action: Callable[[datetime], None]) -> None:
        self.at(self.start + timedelta(seconds=self._rng.randrange(86_400)), action)

    def run(self) -> None:
        while self._heap:
            when, _, action = heapq.heappop(self._heap)
            action(when)


class Timeline:
    """The shop's state and its history so far. Call `next_day()` to live through the next day."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.day = 0
        self.orders_created = 0
        self._customers: dict[str, _Customer] = {}
        self._products: dict[str, _Product] = {}
        self._open_orders: dict[str, _Order] = {}
        self._pool: list[str] = []  # customers who can order or change: visible before today, not deleted
        self._joining: dict[int, list[str]] = {}  # day -> customers who join the pool after that day
        self._leaving: list[str] = []
        self._customer_count = 0
        self._payment_count = 0
        self._rng = day_rng(config.seed, 0)
        self._agenda = _Agenda(self._rng, day_start(config, 0))
        self._versions: list[OrderVersion] = []
        self._payment_rows: list[_PaymentRow] = []
        self._open_the_shop()

    # -- reading the state ------------------------------------------------------------------------------

    def customer_rows(self, through_day: int) -> Iterator[Emitted[dict[str, Any]]]:
        """The app_db customers rows as they are at the end of `through_day`."""
        return (c.row for c in self._customers.values() if c.visible_day <= through_day)

    def product_rows(self) -> Iterator[Emitted[dict[str, Any]]]:
        return (p.row for p in self._products.values())

    # -- living a day -----------------------------------------------------------------------------------

    def next_day(self) -> Day:
        self.day += 1
        config, rng = self.config, day_rng(self.config.seed, self.day)
        self._rng = rng
        self._agenda = agenda = _Agenda(rng, day_start(config, self.day))
        self._versions, self._payment_rows, self._leaving = [], [], []

        for order_id in self._open_orders:
            if rng.random() < config.update_rate:
                agenda.at_random(partial(self._advance, order_id))
        for _ in range(config.new_customers_per_day):
            agenda.at_random(self._sign_up)
        if self._pool:
            for _ in range(stochastic_round(rng, len(self._pool) * CUSTOMER_UPDATE_SHARE)):
                agenda.at_random(partial(self._change_customer, rng.choice(self._pool)))
            for _ in range(stochastic_round(rng, len(self._pool) * CUSTOMER_DELETE_SHARE)):
                agenda.at_random(partial(self._delete_customer, rng.choice(self._pool)))
        skus = list(self._products)
        for _ in range(stochastic_round(rng, len(skus) * PRODUCT_UPDATE_SHARE)):
            agenda.at_random(partial(self._change_product, rng.choice(skus)))
        on_sale = [p for p in self._products.values() if p.active]
        for _ in range(config.orders_per_day):
            late_customer = rng.random() < config.late_dimension_rate
            customer_id = None if late_customer or not self._pool else rng.choice(self._pool)
            agenda.at_random(partial(self._place_order, customer_id, late_customer, on_sale))
        agenda.run()

        files = self._settle()
        if self._leaving:  # one pass, not a list.remove per leaver: the pool can hold millions
            leaving = set(self._leaving)
            self._pool = [customer_id for customer_id in self._pool if customer_id not in leaving]
        self._pool.extend(self._joining.pop(self.day, []))
        return Day(self.day, self._versions, files)

    # -- day 0 ------------------------------------------------------------------------------------------

    def _open_the_shop(self) -> None:
        rng, opening = self._rng, day_start(self.config, 1)
        history = INITIAL_HISTORY_DAYS * 86_400
        for n in range(1, self.config.products + 1):
            product = _Product(
                sku=f"SKU-{n:04d}",
                name=f"{rng.choice(catalog.PRODUCT_ADJECTIVES)} {rng.choice(catalog.PRODUCT_NOUNS)}",
                category=rng.choice(catalog.CATEGORIES),
                list_price=Decimal(rng.randint(199, 19_999)) * CENT,
                active=n == 1 or rng.random() >= INACTIVE_PRODUCT_SHARE,
                updated_at=opening - timedelta(seconds=rng.randint(1, history)),
            )
            self._products[product.sku] = product
            self._emit_product(product)
        for _ in range(self.config.customers):
            created_at = opening - timedelta(seconds=rng.randint(1, history))
            updated_at = created_at + timedelta(seconds=rng.randint(0, int((opening - created_at).total_seconds()) - 1))
            self._new_customer(created_at, updated_at, visible_day=0)
        self._pool.extend(self._joining.pop(0, []))

    # -- customers and products -------------------------------------------------------------------------

    def _new_customer(self, created_at: datetime, updated_at: datetime, visible_day: int) -> _Customer:
        rng = self._rng
        self._customer_count += 1
        n = self._customer_count
        first, last = rng.choice(catalog.FIRST_NAMES), rng.choice(catalog.LAST_NAMES)
        customer = _Customer(
            id=f"c_{n:06d}",
            email=f"{_ascii(first)}.{_ascii(last)}.{n}@{rng.choice(catalog.EMAIL_DOMAINS)}",
            full_name=f"{first} {last}",
            country=COUNTRY.pick(rng),
            created_at=created_at,
            updated_at=updated_at,
            visible_day=visible_day,
        )
        self._customers[customer.id] = customer
        self._joining.setdefault(visible_day, []).append(customer.id)
        self._emit_customer(customer)
        return customer

    def _sign_up(self, at: datetime) -> None:
        self._new_customer(at, at, visible_day=self.day)

    def _change_customer(self, customer_id: str, at: datetime) -> None:
        customer, rng = self._customers[customer_id], self._rng
        if customer.deleted_at is not None:
            return
        change = rng.choice(("email", "name", "country"))
        if change == "email":
            local = customer.email.partition("@")[0]
            customer.email = f"{local}@{rng.choice(catalog.EMAIL_DOMAINS)}"
        elif change == "name":
            customer.full_name = f"{customer.full_name.split(' ')[0]} {rng.choice(catalog.LAST_NAMES)}"
        else:
            customer.country = COUNTRY.pick(rng)
        customer.updated_at = at
        self._emit_customer(customer)

    def _delete_customer(self, customer_id: str, at: datetime) -> None:
        customer = self._customers[customer_id]
        if customer.deleted_at is not None:
            return
        customer.deleted_at = customer.updated_at = at
        self._leaving.append(customer_id)
        self._emit_customer(customer)

    def _change_product(self, sku: str, at: datetime) -> None:
        product, rng = self._products[sku], self._rng
        if rng.random() < 0.8:
            product.list_price = max(
                CENT * 50, (product.list_price * (100 + rng.randint(-15, 15)) / 100).quantize(CENT)
            )
        elif not product.active or sum(p.active for p in self._products.values()) > 1:
            product.active = not product.active
        product.updated_at = at
        self._emit_product(product)

    def _emit_customer(self, customer: _Customer) -> None:
        fields: dict[str, Any] = {
            "id": customer.id,
            "email": customer.email,
            "full_name": customer.full_name,
            "country": customer.country,
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
            "deleted_at": customer.deleted_at,
        }
        customer.row = self._app_db_row("customers", Customer, fields, invalid_customer)

    def _emit_product(self, product: _Product) -> None:
        fields: dict[str, Any] = {
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "list_price": product.list_price,
            "currency": catalog.CATALOGUE_CURRENCY,
            "active": int(product.active),  # BOOLEAN in SQLite is 0/1
            "updated_at": product.updated_at,
        }
        product.row = self._app_db_row("products", Product, fields, invalid_product)

    def _app_db_row(
        self,
        table: str,
        model: type[Customer] | type[Product],
        fields: dict[str, Any],
        break_rule: Callable[[dict[str, Any], Random], tuple[dict[str, Any], str]],
    ) -> Emitted[dict[str, Any]]:
        """An app_db row through its pydantic model; `invalid_rate` of them break one contract rule."""
        rule = None
        if self._rng.random() < self.config.invalid_rate:
            fields, code = break_rule(fields, self._rng)
            rule = f"{table}.{code}"
        return Emitted(model(**_formatted(fields, sqlite_timestamp)).model_dump(mode="json"), rule)

    # -- orders -----------------------------------------------------------------------------------------

    def _place_order(self, customer_id: str | None, late_customer: bool, on_sale: list[_Product], at: datetime) -> None:
        rng = self._rng
        if customer_id is None:
            # A first-time buyer signing up at checkout. A late one reaches app_db the next day (its row
            # then carries that day's updated_at, as a replication catch-up would).
            signed_up = at - timedelta(seconds=rng.randint(60, 1800))
            if late_customer:
                arrives = day_start(self.config, self.day + 1) + timedelta(seconds=rng.randint(0, 6 * 3600))
                customer = self._new_customer(signed_up, arrives, visible_day=self.day + 1)
            else:
                customer = self._new_customer(signed_up, signed_up, visible_day=self.day)
        else:
            customer = self._customers[customer_id]
        currency = catalog.COUNTRY_CURRENCY[customer.country]
        picked = rng.sample(on_sale, min(len(on_sale), LINE_COUNT.pick(rng)))
        lines = tuple(_Line(p.sku, QUANTITY.pick(rng), price_in(currency, p.list_price)) for p in picked)
        self.orders_created += 1
        order = _Order(
            id=f"o_{self.orders_created:06d}",
            customer_id=customer.id,
            currency=currency,
            shipping_country=customer.country,
            lines=lines,
            total=sum((line.quantity * line.unit_price for line in lines), Decimal("0.00")).quantize(CENT),
            created_at=at,
            updated_at=at,
        )
        self._open_orders[order.id] = order
        self._emit_order(order, at, first=True)
        if rng.random() < SAME_DAY_PAYMENT_SHARE:
            self._agenda.at(at + timedelta(seconds=rng.randint(60, 1800)), partial(self._advance, order.id))

    def _advance(self, order_id: str, at: datetime) -> None:
        order, rng = self._open_orders[order_id], self._rng
        order.status = NEXT_STATUS[order.status].pick(rng)
        self._emit_order(order, at, first=False)
        if order.status == "paid":
            self._pay(order, at)
        elif order.status == "refunded":
            self._refund(order, at)
        if order.status in catalog.TERMINAL_ORDER_STATUSES:
            del self._open_orders[order_id]

    def _emit_order(self, order: _Order, at: datetime, first: bool) -> None:
        config, rng = self.config, self._rng
        updated_at, late = at, False
        if rng.random() < config.late_version_rate:
            skewed = at - timedelta(seconds=rng.randint(1, MAX_LATE_SKEW_SECONDS))
            if not first:
                # Never behind the order's previous version: the newest updated_at stays the newest state.
                skewed = max(skewed, order.updated_at + SECOND)
            if skewed < at:
                updated_at, late = skewed, True
        if first:
            order.created_at = updated_at
        order.updated_at = updated_at
        fields: dict[str, Any] = {
            "id": order.id,
            "customer_id": order.customer_id,
            "status": order.status,
            "currency": order.currency,
            "shipping_country": order.shipping_country,
            "created_at": order.created_at,
            "updated_at": updated_at,
            "items": [
                {"line": n, "sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
                for n, line in enumerate(order.lines, start=1)
            ],
        }
        if rng.random() < EXTRA_FIELD_SHARE:
            key, value = rng.choice(catalog.EXTRA_ORDER_FIELDS)
            fields[key] = value
        damaged, rule = rng.random() < config.damaged_rate, None
        if not damaged and rng.random() < config.invalid_rate:
            fields, code = invalid_order(fields, rng)
            rule = f"orders.{code}"
        items = _styled_items(fields.pop("items"), rng.random() < TEXT_NUMBERS_SHARE)
        # The model checks the record is one a loader can land; it would turn items into JSON text, the
        # form a loader lands them in, so items join the body afterwards as the array the API serves.
        record = Order(**_formatted(fields, iso_timestamp)).model_dump(mode="json", exclude_none=False)
        body: dict[str, Any] | str = {**record, "items": items}
        if damaged:
            body = damaged_order_body(body, rng)
        self._versions.append(OrderVersion(body, at, rule, damaged, late))

    # -- payments ---------------------------------------------------------------------------------------

    def _new_payment(self, order: _Order, status: str, at: datetime) -> _Payment:
        self._payment_count += 1
        method = PAYMENT_METHOD.pick(self._rng)
        return _Payment(f"p_{self._payment_count:06d}", order.id, order.total, order.currency, method, status, at, at)

    def _pay(self, order: _Order, at: datetime) -> None:
        if self._rng.random() < FAILED_ATTEMPT_SHARE:
            attempted = at - timedelta(seconds=self._rng.randint(30, 300))
            self._emit_payment(self._new_payment(order, "failed", attempted))
        order.payment = self._new_payment(order, "succeeded", at)
        self._emit_payment(order.payment)

    def _refund(self, order: _Order, at: datetime) -> None:
        payment = order.payment
        if payment is None:
            return
        payment.status = "refunded"
        payment.updated_at = max(at, payment.updated_at + MINUTE)
        self._emit_payment(payment)

    def _emit_payment(self, payment: _Payment) -> None:
        config, rng = self.config, self._rng
        truth = payment.fields()
        if rng.random() < config.damaged_rate:
            emitted: CsvRow = Emitted(damaged_payment_line(payment_values(truth), rng), damaged=True)
        elif rng.random() < config.invalid_rate:
            fields, code = invalid_payment(truth, rng)
            emitted = Emitted(payment_values(fields), f"payments.{code}")
        else:
            emitted = Emitted(payment_values(truth))
        self._payment_rows.append(_PaymentRow(truth, emitted, payment))

    # -- settlement files -------------------------------------------------------------------------------

    def _settle(self) -> list[PaymentsFile]:
        """Split the day's payment rows into its files and decide when each is (re-)delivered."""
        config, rng, day = self.config, self._rng, self.day
        buckets: list[list[_PaymentRow]] = [[] for _ in range(config.files_per_day)]
        for row in self._payment_rows:
            buckets[rng.randrange(config.files_per_day)].append(row)
        settled = (config.start_date + (day - 1) * DAY).strftime("%Y%m%d")
        files = []
        for number, rows in enumerate(buckets, start=1):
            delay = rng.randint(1, 3) if rng.random() < config.late_file_rate else 0
            if delay:
                delivered_at = day_start(config, day + delay) + timedelta(seconds=rng.randint(3600, 22 * 3600))
            else:
                delivered_at = day_start(config, day) + timedelta(hours=23, seconds=30 * number)
            deliveries = [Delivery(delivered_at, tuple(row.emitted for row in rows), bool(delay), False)]
            if rng.random() < config.redelivery_rate:
                original, corrected = self._corrections(rows)
                again_at = day_start(config, day + delay + 1) + timedelta(seconds=rng.randint(8 * 3600, 20 * 3600))
                deliveries = [
                    Delivery(delivered_at, original, bool(delay), False),
                    Delivery(again_at, corrected, bool(delay), True),
                ]
            files.append(PaymentsFile(f"payments_{settled}_{number:02d}.csv", tuple(deliveries)))
        return files

    def _corrections(self, rows: list[_PaymentRow]) -> tuple[tuple[CsvRow, ...], tuple[CsvRow, ...]]:
        """(first delivery, re-delivery) of a file the processor corrects.

        The re-delivery repairs its damaged rows and replaces some provisional rows of the first delivery
        with the truth: half with a bumped `updated_at` (a new version), half under the same `updated_at`
        (the same version, re-delivered with other values). Rows with planted violations stay as they were.
        """
        rng = self._rng
        eligible = [i for i, row in enumerate(rows) if not row.emitted.damaged and row.emitted.rule is None]
        chosen = {i for i in eligible if rng.random() < CORRECTED_ROW_SHARE}
        if eligible and not chosen:
            chosen.add(rng.choice(eligible))
        original: list[CsvRow] = []
        corrected: list[CsvRow] = []
        for i, row in enumerate(rows):
            if row.emitted.damaged:
                original.append(row.emitted)
                corrected.append(Emitted(payment_values(row.truth)))
            elif i in chosen:
                provisional, truth = self._provisional(row)
                original.append(Emitted(payment_values(provisional)))
                corrected.append(Emitted(payment_values(truth)))
            else:
                original.append(row.emitted)
                corrected.append(row.emitted)
        return tuple(original), tuple(corrected)

    def _provisional(self, row: _PaymentRow) -> tuple[dict[str, Any], dict[str, Any]]:
        """(what the first delivery said, the truth) for one corrected row."""
        rng, truth = self._rng, row.truth
        if rng.random() < 0.5:
            bumped = {**truth, "updated_at": truth["updated_at"] + timedelta(seconds=rng.randint(60, 3600))}
            if truth["status"] == "succeeded" and rng.random() < 0.5:
                provisional = {**truth, "status": "failed"}
            else:
                provisional = {
                    **truth,
                    "amount": truth["amount"] + Decimal(rng.choice(("0.01", "0.50", "1.00"))),
                }
            # The corrected version is now the payment's latest; a later refund must come after it.
            row.payment.updated_at = max(row.payment.updated_at, bumped["updated_at"])
            return provisional, bumped
        if rng.random() < 0.5:
            return {**truth, "method": other_method(truth["method"], rng)}, truth
        return {**truth, "amount": truth["amount"] + Decimal("0.10")}, truth
