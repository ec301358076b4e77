"""What the project is made of, declared once.

- The sources: the `elt_sources` var of `dbt_project.yml`, read by dbt (`ops.dead_letters`) and here by
  the command line, the harness, the ledger, `elt status` and the tests. Each name is the dlt source
  `loaders.sources.<name>.<name>`, landing in the raw dataset `raw_<name>`.
- The entities the rules judge: the canonical and quarantine table's name, its natural key, the raw table
  its versions land in and the intermediate model where they are evaluated.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
SOURCE_NAMES: tuple[str, ...] = tuple(
    yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["elt_sources"]
)


def dlt_source(name: str) -> Any:
    """The dlt source function of a registered source (imports dlt: call it only to load)."""
    if name not in SOURCE_NAMES:
        raise KeyError(f"{name!r} is not a registered source: {', '.join(SOURCE_NAMES)} (dbt_project.yml)")
    return getattr(importlib.import_module(f"loaders.sources.{name}"), name)


@dataclass(frozen=True)
class Entity:
    name: str  # analytics.<name> and quarantine.<name>
    key: str
    source: str  # where its versions land: raw_<source>.<raw_table>, keyed by raw_key
    raw_table: str
    raw_key: str

    @property
    def versions_model(self) -> str:
        return f"int_{self.name}__versions"


ENTITIES: tuple[Entity, ...] = (
    Entity("customers", "customer_id", "app_db", "customers", "id"),
    Entity("products", "sku", "app_db", "products", "sku"),
    Entity("orders", "order_id", "shop_api", "orders", "id"),
    Entity("payments", "payment_id", "payments_files", "payments", "payment_id"),
)
