"""The entities the rules judge, declared once: the canonical and quarantine table's name, its natural key,
and the intermediate model where its versions are evaluated. The harness, `elt replay` and the tests
derive from this list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    name: str  # analytics.<name> and quarantine.<name>
    key: str

    @property
    def versions_model(self) -> str:
        return f"int_{self.name}__versions"


ENTITIES: tuple[Entity, ...] = (
    Entity("customers", "customer_id"),
    Entity("products", "sku"),
    Entity("orders", "order_id"),
    Entity("payments", "payment_id"),
)
