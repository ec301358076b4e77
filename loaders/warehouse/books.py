"""A run's books: every record and every version accounted for, each side counted on its own.

- **Per source** (each source the run loaded): the records the source handed over — counted by the source
  itself, before dlt saw them (the load's `Tally`) — equal the rows the warehouse holds under the
  run's load ids in the raw tables (landed) and in `dead_letters` (dead-lettered), plus the rows dlt's
  merge collapsed because the same (key, version) came twice in one extraction (counted in the staging
  dataset), plus the rows read again exactly as raw holds them and so left out of the load (unchanged).
  A record dropped anywhere between the source and the raw table unbalances it.
- **Per entity** (after a build in which no model failed): the distinct versions landed in raw (loads
  that completed) equal the rows of the canonical table, plus the open rows of its quarantine table, plus
  the versions superseded — neither the latest of their key nor its last good one (the versions model's
  own flags). A version the models lost, or a key in neither table, unbalances it.

An unbalanced book makes the run exit BOOKS_UNBALANCED, naming the book and the difference; the books
are kept in the ledger (`ops.elt_run_books`). Counting an entity reads its whole raw table and versions
model once per run: an aggregate, which both warehouses answer from their column statistics or one scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from loaders.core.outcomes import SourceOutcome
from loaders.core.registry import ENTITIES, LOADS_TABLE, raw_dataset
from loaders.core.settings import Settings
from loaders.warehouse import dialect


@dataclass(frozen=True)
class Book:
    name: str  # "shop_api records", "orders versions"
    total_name: str
    total: int
    parts: dict[str, int]

    @property
    def difference(self) -> int:
        """The total minus the sum of its parts: > 0 some went missing, < 0 some were counted twice."""
        return self.total - sum(self.parts.values())

    @property
    def balanced(self) -> bool:
        return self.difference == 0

    def describe(self) -> str:
        parts = " + ".join(f"{name} {count}" for name, count in self.parts.items())
        verdict = "" if self.balanced else f", off by {self.difference:+d}"
        return f"{self.name}: {self.total_name} {self.total} = {parts}{verdict}"


def source_books(outcomes: list[SourceOutcome]) -> list[Book]:
    books = []
    for outcome in outcomes:
        if outcome.error:
            continue
        parts = {"landed": outcome.landed, "dead_lettered": outcome.dead_lettered, "collapsed": outcome.collapsed}
        if outcome.unchanged is not None:  # read again exactly as raw holds it: left out of the load
            parts["unchanged"] = outcome.unchanged
        books.append(Book(f"{outcome.source} records", "extracted", outcome.extracted, parts))
    return books


def entity_books(settings: Settings) -> list[Book]:
    warehouse = dialect(settings)
    books = []
    for entity in ENTITIES:
        raw = raw_dataset(entity.source)
        completed = f"select load_id from {raw}.{LOADS_TABLE} where status = 0"
        landed_rows = f"from {raw}.{entity.raw_table} where _dlt_load_id in ({completed})"
        ((landed,),) = warehouse.fetch_all(warehouse.count_versions(entity, landed_rows))
        ((canonical,),) = warehouse.fetch_all(f"select count(*) from analytics.{entity.name}")
        ((open_rows,),) = warehouse.fetch_all(f"select count(*) from quarantine.{entity.name} where not is_resolved")
        ((superseded,),) = warehouse.fetch_all(
            f"select count(*) from staging.{entity.versions_model} where not is_latest and not is_last_good"
        )
        parts = {"canonical": int(canonical), "open_in_quarantine": int(open_rows), "superseded": int(superseded)}
        books.append(Book(f"{entity.name} versions", "landed", int(landed), parts))
    return books
