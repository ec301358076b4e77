"""A private copy of the dbt project, for tests that change its rules or seeds (`ELT_PROJECT_DIR`)."""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT_PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "models", "macros", "seeds", "tests/dbt")


def copy_of_the_dbt_project(dest: Path) -> Path:
    for name in DBT_PROJECT_FILES:
        source, target = PROJECT_DIR / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))
