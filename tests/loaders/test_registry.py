"""The one registry of sources (`elt_sources` in dbt_project.yml): every entry has its dlt loader and its
dbt source with the tables the harness and the models read, and every consumer derives from it."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from loaders.cli import app
from loaders.core.registry import PROJECT_DIR, SOURCE_NAMES
from loaders.sources import spec, specs
from tests.support.project import SOURCES as TEST_SOURCES


def dbt_sources() -> dict[str, dict]:
    found = {}
    for path in (PROJECT_DIR / "models").rglob("_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            found[source["name"]] = source
    return found


def test_every_registered_source_has_a_loader_and_a_dbt_source() -> None:
    declared = dbt_sources()
    assert set(declared) == set(SOURCE_NAMES)
    for name in SOURCE_NAMES:
        assert spec(name).dlt_source.name == name  # the dlt source of that name
        assert declared[name]["schema"] == f"raw_{name}"
        tables = {table["name"] for table in declared[name]["tables"]}
        assert {"_dlt_loads", "dead_letters"} <= tables, (name, tables)


def test_consumers_derive_from_the_registry() -> None:
    assert tuple(specs()) == SOURCE_NAMES
    assert tuple(TEST_SOURCES) == SOURCE_NAMES
    choices = "|".join(SOURCE_NAMES)  # the command line offers exactly the registry's names, in its order
    for command in ("run", "load", "reset"):
        helped = CliRunner().invoke(app, [command, "--help"])
        assert helped.exit_code == 0 and choices in helped.output, (command, helped.output)
    dead_letters = (PROJECT_DIR / "models" / "ops" / "dead_letters.sql").read_text()
    assert "var('elt_sources')" in dead_letters
