"""Adding a source is its folder, its dbt files and one entry in each list of the registry — proven by adding
a fourth one to a copy of the project exactly as the runbook says (docs/runbook.md, "Add a source"): its
commands run as written in the copy, its registry lines applied to the copy's `dbt_project.yml`. Then
`elt run` lands the new source's refunds, builds their canonical and quarantine tables and balances their
books, and `git status` of the copy shows nothing changed but the folders the runbook names and the
registry.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.cli import PROJECT_DIR
from tests.support.project import Project
from tests.support.runbook import RUNBOOK, Runbook

# the fourth source must land and build the same on both warehouses (its dbt files are new SQL)
pytestmark = pytest.mark.warehouses("duckdb", "postgres")

TITLE = "Add a source"
# What adding `refunds_files` may touch: its folders, its entity's files, the registry.
ALLOWED = (
    "loaders/sources/refunds_files/",
    "models/staging/refunds_files/",
    "models/intermediate/int_refunds__versions.sql",
    "models/intermediate/_int_refunds__models.yml",
    "models/marts/refunds.sql",
    "models/marts/_refunds__models.yml",
    "models/quarantine/quarantined_refunds.sql",
    "models/quarantine/_quarantined_refunds__models.yml",
    "macros/rules/refund_rules.sql",
)
REGISTRY = "dbt_project.yml"
REFUNDS = [
    {"refund_id": "r1", "payment_id": "p1", "amount": "10.00", "currency": "EUR", "reason": "duplicate",
     "refunded_at": "2024-03-01T10:00:00Z", "updated_at": "2024-03-01T10:00:00Z"},
    {"refund_id": "r2", "payment_id": "p2", "amount": "5.50", "currency": "EUR", "reason": "fraud",
     "refunded_at": "2024-03-01T11:00:00Z", "updated_at": "2024-03-01T11:00:00Z"},
    {"refund_id": "r3", "payment_id": "p3", "amount": "7.00", "currency": "XYZ", "reason": "fraud",
     "refunded_at": "2024-03-01T12:00:00Z", "updated_at": "2024-03-01T12:00:00Z"},
]  # fmt: skip


def copy_of_the_project(dest: Path) -> Path:
    """The repository's tracked files, as a fresh clone has them, committed in a git repository of their own."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    for name in filter(None, files.decode().split("\0")):
        source, target = PROJECT_DIR / name, dest / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the project"], cwd=dest, check=True)
    return dest


def register(copy: Path) -> None:
    """Apply the runbook's registry lines (its ```yaml block) to the copy's dbt_project.yml, as an editor would:
    the `elt_sources` line replaced, the new entities added under `elt_entities`."""
    section = RUNBOOK.read_text().split(f"## 9. {TITLE}", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    lines = block.splitlines()
    entities = [line for line in lines if line.startswith("  ")]
    path = copy / REGISTRY
    text = path.read_text()
    text = re.sub(r"^  elt_sources: .*$", "  " + lines[0], text, count=1, flags=re.MULTILINE)
    last_entity = [line for line in text.splitlines() if re.match(r"^    \w+: \{key: ", line)][-1]
    text = text.replace(last_entity, "\n".join([last_entity, *("  " + line for line in entities)]), 1)
    path.write_text(text)
    declared = yaml.safe_load(text)["vars"]
    assert declared["elt_sources"][-1] == "refunds_files" and "refunds" in declared["elt_entities"]


def test_a_fourth_source_added_as_the_runbook_says_lands_builds_and_touches_nothing_else(
    project: Project, runbook: Runbook, tmp_path: Path
) -> None:
    copy = copy_of_the_project(tmp_path / "project")
    refunds = tmp_path / "refunds"
    refunds.mkdir()
    lines = [json.dumps(refund) for refund in REFUNDS] + ["{not json at all"]
    (refunds / "refunds_20240301_01.jsonl").write_text("\n".join(lines) + "\n")
    # the copy's own package (not the one the virtualenv points at), its settings, the new source's folder
    env = {
        "PYTHONPATH": str(copy),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "SOURCES__REFUNDS_FILES__BUCKET_URL": str(refunds),
    }

    runbook.run(TITLE, copy, env)  # cp -r docs/examples/refunds_files/. .
    register(copy)
    registry, check, run = runbook.run_all(TITLE, copy, env)
    assert " passed" in registry.stdout, registry.stdout
    assert "refunds_files: ok" in check.stdout, check.stdout
    assert run.stdout.startswith("elt run ok:"), run.stdout
    assert "refunds_files extracted=4 landed=3 unchanged=0 dead_lettered=1" in run.stdout, run.stdout
    books = [json.loads(line) for line in run.stderr.splitlines() if '"event": "book"' in line]
    assert {book["name"] for book in books} >= {"refunds_files records", "refunds versions"}
    assert all(book["balanced"] for book in books), books

    assert sorted(row[0] for row in project.query("select refund_id from analytics.refunds")) == ["r1", "r2"]
    assert project.query("select refund_id, failed_rules from quarantine.refunds where not is_resolved") == [
        ("r3", "unknown_currency")
    ]
    dead = project.query("select source, location from ops.dead_letters where source = 'refunds_files'")
    assert dead == [("refunds_files", "refunds_20240301_01.jsonl line 4")]

    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=copy, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    paths = [line[3:] for line in changed]
    assert f" M {REGISTRY}" in changed, changed
    outside = [path for path in paths if path != REGISTRY and not path.startswith(ALLOWED)]
    assert not outside, f"adding the source changed files the runbook does not name: {outside}"
    assert any(path.startswith("loaders/sources/refunds_files/") for path in paths), paths
