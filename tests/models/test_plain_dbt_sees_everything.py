"""After a run, plain `dbt` from the project root (no flags: the default selector of selectors.yml) sees
every source: `dbt source freshness` checks each one that has a freshness config, `dbt ls` lists them,
`dbt docs generate` catalogs them. And the project documents and tests itself, as dbt counts it from its
manifest and catalog: every model has a data test; the columns of the canonical and quarantine tables
and of the source tables — as the warehouse has them, not only as declared — are described.

On DuckDB after `elt demo` (a day of sample sources)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def test_after_a_run_plain_dbt_sees_every_source_and_finds_every_model_tested_and_documented(tmp_path: Path) -> None:
    """One build for all the checks (a module fixture would be built again by each pytest worker)."""
    built = run_demo(tmp_path, {"ELT_TARGET": "duckdb", "ELT_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")})
    target = Path(built["DBT_TARGET_PATH"])

    # `dbt source freshness` checks every source that has a freshness config
    proc = dbt(["source", "freshness"], built)
    assert proc.returncode == 0, proc.stdout[-3000:]
    results = json.loads((target / "sources.json").read_text())["results"]
    assert {r["unique_id"]: r["status"] for r in results} == dict.fromkeys(FRESHNESS_CHECKED, "pass")

    # `dbt ls` lists every source
    proc = dbt(["--quiet", "ls", "--resource-type", "source", "--output", "json", "--output-keys", "unique_id"], built)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert {json.loads(line)["unique_id"] for line in proc.stdout.splitlines() if line.startswith("{")} == SOURCE_TABLES

    # `dbt docs generate` catalogs every source
    proc = dbt(["docs", "generate"], built)
    assert proc.returncode == 0, proc.stdout[-3000:]
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    assert set(manifest["sources"]) == SOURCE_TABLES
    assert set(catalog["sources"]) == SOURCE_TABLES

    assert_every_model_has_a_data_test(manifest)
    assert_contract_and_source_columns_described(manifest, catalog)


def assert_every_model_has_a_data_test(manifest: dict[str, Any]) -> None:
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


def assert_contract_and_source_columns_described(manifest: dict[str, Any], catalog: dict[str, Any]) -> None:
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
