"""Reference values the simulated shop draws from: countries, currencies, names, statuses.

Every code here is a real, officially assigned ISO code, so a record built from these values alone passes the
contract's reference checks; the `UNKNOWN_*` values are the deliberate exceptions used to break them.
"""

from __future__ import annotations

from decimal import Decimal

# Shipping country -> the currency the shop charges there. Weights skew towards the shop's home market.
COUNTRY_CURRENCY: dict[str, str] = {
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "AT": "EUR",
    "ES": "EUR",
    "IT": "EUR",
    "BE": "EUR",
    "IE": "EUR",
    "GB": "GBP",
    "US": "USD",
    "SE": "SEK",
    "DK": "DKK",
    "PL": "PLN",
    "CH": "CHF",
}
COUNTRIES: tuple[str, ...] = tuple(COUNTRY_CURRENCY)
COUNTRY_WEIGHTS: tuple[int, ...] = (30, 10, 8, 6, 6, 6, 4, 2, 8, 8, 3, 3, 3, 2)

# Catalogue prices are kept in EUR; an order line is priced in the order's currency at these fixed rates.
EUR_RATES: dict[str, Decimal] = {
    "EUR": Decimal(1),
    "GBP": Decimal("0.86"),
    "USD": Decimal("1.09"),
    "SEK": Decimal("11.40"),
    "DKK": Decimal("7.46"),
    "PLN": Decimal("4.32"),
    "CHF": Decimal("0.96"),
}
CURRENCIES: tuple[str, ...] = tuple(EUR_RATES)
CATALOGUE_CURRENCY = "EUR"

ORDER_STATUSES: tuple[str, ...] = ("placed", "paid", "shipped", "delivered", "cancelled", "refunded")
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"delivered", "cancelled", "refunded"})
PAYMENT_STATUSES: tuple[str, ...] = ("succeeded", "failed", "refunded")
PAYMENT_METHODS: tuple[str, ...] = ("card", "bank_transfer", "wallet")
PAYMENT_METHOD_WEIGHTS: tuple[int, ...] = (60, 15, 25)

# Values that break a contract rule on purpose. The ids are never assigned: numbering starts at 1.
UNKNOWN_COUNTRY = "XX"
UNKNOWN_CURRENCY = "XXY"
UNKNOWN_CUSTOMER_ID = "c_000000"
UNKNOWN_ORDER_ID = "o_000000"
BAD_TIMESTAMP = "not-a-date"

FIRST_NAMES: tuple[str, ...] = (
    "Ana",
    "Ben",
    "Chloé",
    "David",
    "Elif",
    "Finn",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Katarzyna",
    "Lars",
    "Maya",
    "Noah",
    "Olivia",
    "Pedro",
    "Quinn",
    "Rosa",
    "Søren",
    "Tara",
)
LAST_NAMES: tuple[str, ...] = (
    "Almeida",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "García",
    "Hansen",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Müller",
    "Nowak",
    "O'Brien",
    "Peeters",
    "Rossi",
    "Smith",
    "Schmidt",
    "Visser",
)
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "mail.example.net")

CATEGORIES: tuple[str, ...] = ("apparel", "books", "garden", "home", "kitchen", "outdoor", "toys")
PRODUCT_ADJECTIVES: tuple[str, ...] = ("Classic", "Compact", "Deluxe", "Eco", "Handmade", "Smart", "Travel")
PRODUCT_NOUNS: tuple[str, ...] = ("Backpack", "Kettle", "Lamp", "Mug", "Notebook", "Planter", "Scarf", "Tent")

EXTRA_ORDER_FIELDS: tuple[tuple[str, str], ...] = (
    ("coupon", "SPRING"),
    ("channel", "mobile"),
    ("gift_note", "Happy birthday!"),
)
