"""After a run, plain `dbt` from the project root (no flags: the default selector of selectors.yml) sees
every source: `dbt source freshness` checks each one that has a freshness config, `dbt ls` lists them,
`dbt docs generate` catalogs them. And the project documents and tests itself, as dbt counts it from its
manifest and catalog: every model has a data test; the columns of the canonical and quarantine tables
and of the source tables — as the warehouse has them, not only as declared — are described.

One warehouse for the module: DuckDB after `elt demo` (a day of sample sources)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loaders.core.registry import ENTITIES, SOURCE_NAMES
from tests.dbt_support.demo import dbt, run_demo

DESCRIBED_AT_LEAST = 0.95
# every source table the project declares: each source's data tables, its dead letters and dlt's loads
SOURCE_TABLES = {
    f"source.elt.{source}.{table}"
    for source in SOURCE_NAMES
    for table in [
        *(entity.raw_table for entity in ENTITIES if entity.source == source),
        "dead_letters",
        "_dlt_loads",
    ]
}
# the sources a freshness verdict is asked of: the data tables (dead letters and loads opt out)
FRESHNESS_CHECKED = {s for s in SOURCE_TABLES if not s.endswith((".dead_letters", "._dlt_loads"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("demo")
    warehouse = {"ELT_TARGET": "duckdb", "ELT_DUCKDB_PATH": str(folder / "warehouse.duckdb")}
    return run_demo(folder, warehouse)


@pytest.fixture(scope="module")
def documented(built: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest and the catalog of a plain `dbt docs generate`."""
    proc = dbt(["docs", "generate"], built)
    assert proc.returncode == 0, proc.stdout[-3000:]
    target = Path(built["DBT_TARGET_PATH"])
    return json.loads((target / "manifest.json").read_text()), json.loads((target / "catalog.json").read_text())


def test_source_freshness_checks_every_source_with_a_freshness_config(built: dict[str, str]) -> None:
    proc = dbt(["source", "freshness"], built)

    assert proc.returncode == 0, proc.stdout[-3000:]
    results = json.loads((Path(built["DBT_TARGET_PATH"]) / "sources.json").read_text())["results"]
    assert {r["unique_id"]: r["status"] for r in results} == dict.fromkeys(FRESHNESS_CHECKED, "pass")


def test_ls_lists_every_source(built: dict[str, str]) -> None:
    proc = dbt(["ls", "--resource-type", "source", "--output", "json", "--output-keys", "unique_id"], built)

    assert proc.returncode == 0, proc.stdout[-3000:]
    listed = {json.loads(line)["unique_id"] for line in proc.stdout.splitlines() if line.startswith("{")}
    assert listed == SOURCE_TABLES


def test_docs_generate_catalogs_every_source(documented: tuple[dict[str, Any], dict[str, Any]]) -> None:
    manifest, catalog = documented
    assert set(manifest["sources"]) == SOURCE_TABLES
    assert set(catalog["sources"]) == SOURCE_TABLES


def test_every_model_has_a_data_test(documented: tuple[dict[str, Any], dict[str, Any]]) -> None:
    manifest, _ = documented
    models = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    tested = {
        parent
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "test"
        for parent in node["depends_on"]["nodes"]
    }
    assert len(models) >= 15
    assert sorted(models - tested) == []


def described_share(node: dict[str, Any], catalogued: dict[str, Any]) -> tuple[float, list[str]]:
    """The share of the relation's columns in the warehouse whose description the manifest has, and the
    undescribed ones."""
    described = {name.lower() for name, column in node["columns"].items() if column.get("description", "").strip()}
    actual = [name.lower() for name in catalogued["columns"]]
    missing = [name for name in actual if name not in described]
    return 1 - len(missing) / len(actual), missing


def test_canonical_quarantine_and_source_columns_are_described(
    documented: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    manifest, catalog = documented
    relations: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] == "model" and node["schema"] in ("analytics", "quarantine"):
            relations[uid] = node, catalog["nodes"][uid]
    for uid in SOURCE_TABLES:
        relations[uid] = manifest["sources"][uid], catalog["sources"][uid]
    assert len(relations) == 6 + 4 + len(SOURCE_TABLES)

    shares = {uid: described_share(node, catalogued) for uid, (node, catalogued) in relations.items()}
    columns = sum(len(catalogued["columns"]) for _, catalogued in relations.values())
    missing = {uid: names for uid, (_, names) in shares.items() if names}
    assert 1 - sum(len(names) for names in missing.values()) / columns >= DESCRIBED_AT_LEAST, missing
    # and every relation and every model has a description of its own
    assert [uid for uid, (node, _) in relations.items() if not node["description"].strip()] == []
    models = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    assert [uid for uid, node in models.items() if not node["description"].strip()] == []
