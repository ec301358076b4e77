"""`dbt docs generate` works from the project root with no flags, on both warehouses, and the lineage it
documents is the layout's: each source feeds staging only, staging feeds the entity's versions model, and
that one model (the one place the rules are evaluated) feeds both the canonical table in `analytics` and the
quarantine table in `quarantine`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loaders.core.registry import ENTITIES, SOURCE_NAMES
from loaders.simulate import SimulationConfig, generate
from tests.support.project import Project

PROJECT = Path(__file__).resolve().parents[2]
WORLD = SimulationConfig(seed=5, customers=10, orders_per_day=10)


def ancestors(parent_map: dict[str, list[str]], node: str) -> set[str]:
    found: set[str] = set()
    todo = list(parent_map[node])
    while todo:
        parent = todo.pop()
        if parent not in found:
            found.add(parent)
            todo += parent_map.get(parent, [])
    return found


def test_dbt_docs_generate_from_the_root_documents_sources_staging_canonical_and_quarantine(
    project: Project, tmp_path: Path
) -> None:
    generate(project.root, WORLD, through_day=1)
    project.run()
    target = tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if k not in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR")}

    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "docs", "generate"],
        cwd=PROJECT,
        env={**env, "DBT_TARGET_PATH": str(target)},
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (target / "index.html").is_file()
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    nodes, parents, children = manifest["nodes"], manifest["parent_map"], manifest["child_map"]

    def folder(unique_id: str) -> str:
        return Path(nodes[unique_id]["original_file_path"]).parts[1]  # models/<folder>/...

    registered = {s for s, node in manifest["sources"].items() if node["source_name"] in SOURCE_NAMES}
    assert {manifest["sources"][s]["source_name"] for s in registered} == set(SOURCE_NAMES)
    # who may read what: a source's data tables, staging only; its dead letters, the one ops.dead_letters
    # view; dlt's register of completed loads, staging (which serves completed loads only) and the
    # intermediate models (which read it for the load ids they have not consumed: bookkeeping, not data)
    readers_allowed = {"dead_letters": {"ops"}, "_dlt_loads": {"staging", "intermediate"}}
    data_tables = set()
    for source in registered:
        table = manifest["sources"][source]["name"]
        readers = {folder(child) for child in children[source] if child.startswith("model.")}
        assert readers and readers <= readers_allowed.get(table, {"staging"}), (source, readers)
        if table not in readers_allowed:
            data_tables.add(source)

    for entity in ENTITIES:
        canonical, quarantined = f"model.elt.{entity.name}", f"model.elt.quarantined_{entity.name}"
        versions = f"model.elt.{entity.versions_model}"
        assert (nodes[canonical]["schema"], nodes[canonical]["alias"]) == ("analytics", entity.name)
        assert (nodes[quarantined]["schema"], nodes[quarantined]["alias"]) == ("quarantine", entity.name)
        # one rule set, two outputs: both read the entity's versions model
        assert versions in parents[canonical] and versions in parents[quarantined]
        for output in (canonical, quarantined):
            upstream = ancestors(parents, output)
            staging = {node for node in upstream if node.startswith("model.") and folder(node) == "staging"}
            assert any(nodes[node]["name"].endswith(f"__{entity.name}") for node in staging), (output, staging)
            assert upstream & data_tables, output
            # every path from a source's data passes through staging
            for node in upstream - staging:
                if node.startswith("model."):
                    assert not set(parents[node]) & data_tables, (output, node)
        # and the catalog documents the tables the build left
        assert canonical in catalog["nodes"] and quarantined in catalog["nodes"]
