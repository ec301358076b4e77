"""What every source's record models are made of: the field types and the JSON writer of the landing path.

Each source states its records' shape in its own folder (`loaders/sources/<name>/records.py`) with these
types; the simulator emits those models and the loaders check every record against them at the boundary.
They decide *landability* only: a record needs its natural key and must be a parseable object. Every
other field is typed loosely (text, whatever arrived) so that a value breaking a contract rule still
lands and dbt can quarantine it with a reason; nothing here enforces the contract's business rules.
"""

from __future__ import annotations

import enum
import json
import math
from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


def to_json(value: Any, sort_keys: bool = False) -> str:
    """A parsed value as JSON text (UTF-8, not ASCII-escaped; decimals and dates as their text).

    orjson, about ten times faster than the standard library on a loader's hot path; the standard
    library for what orjson refuses (integers beyond 64 bits, text that is not Unicode: a lone
    surrogate, which the loaders then dead-letter) or would change: it writes NaN and ±Infinity (which
    Python's JSON parser accepts) as null, so output holding a null is checked for them."""
    option = orjson.OPT_PASSTHROUGH_DATETIME | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        text = orjson.dumps(value, default=str, option=option).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=sort_keys)
    if "null" in text and _holds_non_finite(value):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=sort_keys)
    return text


def _holds_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_holds_non_finite(member) for member in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_non_finite(member) for member in value)
    return False


def as_text(value: Any) -> str | None:
    """Keep any scalar as the text that arrived; nested values as JSON text; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return to_json(value, sort_keys=True)


def as_key(value: Any) -> Any:
    """A natural key may arrive as a number; anything else that is not text fails validation."""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


def as_json_text(value: Any) -> str | None:
    """A nested value kept as JSON text (decimals as strings, so no digit is lost)."""
    return None if value is None else to_json(value, sort_keys=True)


Text = Annotated[str | None, BeforeValidator(as_text)]
JsonText = Annotated[str | None, BeforeValidator(as_json_text)]


MAX_KEY_BYTES = 1024
"""The longest natural key, or reference to one, that lands (in UTF-8 bytes). The warehouse indexes keys
and the references it joins on (PostgreSQL's b-tree takes at most ~2.7 kB per entry, whatever the text),
and no source system issues a key of a kilobyte; such a record is dead-lettered whole instead."""


def non_empty(value: str) -> str:
    if not value:
        raise ValueError("the natural key is empty")
    return indexable(value)


def indexable(value: str | None) -> str | None:
    if (
        value is not None
        and len(value) > MAX_KEY_BYTES // 4
        and len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
    ):
        raise ValueError(f"longer than {MAX_KEY_BYTES} bytes, more than a key can be")
    return value


NaturalKey = Annotated[str, BeforeValidator(as_key), AfterValidator(non_empty)]
Reference = Annotated[str | None, BeforeValidator(as_text), AfterValidator(indexable)]
"""A field that names another table's natural key (an order's customer, a payment's order)."""


class FieldKind(enum.Enum):
    """How a field of a source model takes what arrived (see `field_kinds`)."""

    KEY = "key"
    REFERENCE = "reference"
    TEXT = "text"
    JSON = "json"


KIND_OF_VALIDATOR = {as_key: FieldKind.KEY, indexable: FieldKind.REFERENCE, as_json_text: FieldKind.JSON}


def field_kinds(model: type[BaseModel]) -> tuple[tuple[str, FieldKind], ...]:
    """Each field of a source model and its kind, read from the validators its type above carries, so
    that a loader's fast path (loaders/landing/batch.py) follows the model rather than a copy of it."""
    kinds = []
    for name, info in model.model_fields.items():
        funcs = {getattr(meta, "func", None) for meta in info.metadata}
        found = [kind for func, kind in KIND_OF_VALIDATOR.items() if func in funcs]
        kinds.append((name, found[0] if found else FieldKind.TEXT))
    return tuple(kinds)


class SourceRecord(BaseModel):
    """Unknown extra fields are allowed: they are kept in the landed record's JSON."""

    model_config = ConfigDict(extra="allow", frozen=True)
