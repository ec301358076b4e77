"""What the project is made of, declared once in `dbt_project.yml` and read by dbt and by every layer here.

- `elt_sources`: the sources. Each name is a folder `loaders/sources/<name>/` (its dlt source and its spec)
  and a dbt source of that name, landing in the raw dataset `raw_<name>`.
- `elt_entities`: what the rules judge. Each is a canonical table `analytics.<name>` and a quarantine
  table `quarantine.<name>` keyed by `key`, whose versions land in `raw_<source>.<raw_table>` keyed by
  `raw_key` and are judged in `int_<name>__versions`.

Adding a source is its folder, its dbt files and one entry in each of those two lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEAD_LETTERS_TABLE = "dead_letters"
LOADS_TABLE = "_dlt_loads"
# While a run holds its lock on PostgreSQL, the session holding it: dlt's connections and dbt's models check
# it is still there before they write (the lock dies with its session when the server goes away).
RUN_LOCK_SESSION = "ELT_RUN_LOCK_SESSION"


def project_vars(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    return yaml.safe_load((project_dir / "dbt_project.yml").read_text())["vars"]


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


_VARS = project_vars()
SOURCE_NAMES: tuple[str, ...] = tuple(_VARS["elt_sources"])
ENTITIES: tuple[Entity, ...] = tuple(Entity(name, **fields) for name, fields in _VARS["elt_entities"].items())
QUARANTINE_KEYS: dict[str, str] = {entity.name: entity.key for entity in ENTITIES}


def raw_dataset(source: str) -> str:
    return f"raw_{source}"


def pipeline_name(source: str) -> str:
    """The dlt pipeline of a source's scheduled loads (its cursors and manifests live in its state)."""
    return f"elt_{source}"


def backfill_schema_name(source: str) -> str:
    """The dlt schema a backfill's loads go under (`_dlt_loads.schema_name`), so a reader tells them from
    the scheduled loads, and the source's own schema in `_dlt_version` is never a backfill's."""
    return f"{pipeline_name(source)}_backfill"


def backfill_pipeline_name(source: str, slot: int = 0) -> str:
    """The pipeline of a backfill's chunks; one per concurrent worker (`slot`), never the source's own."""
    return f"{backfill_schema_name(source)}_{slot}"


def replay_pipeline_name(source: str) -> str:
    """The pipeline that lands a source's dead letters again (`elt dead-letters replay`)."""
    return f"{pipeline_name(source)}_dead_letters"


def require_source(name: str) -> str:
    if name not in SOURCE_NAMES:
        raise KeyError(f"{name!r} is not a registered source: {', '.join(SOURCE_NAMES)} (dbt_project.yml)")
    return name
