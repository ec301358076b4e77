"""dlt's working folder stays bounded: once a load is committed its package is deleted, so run after run the
folder holds no loaded package and does not grow with the history (a pending package a crash left stays
until it is loaded: tests/loaders/test_resume.py)."""

from __future__ import annotations

from pathlib import Path

from loaders.core.registry import SOURCE_NAMES
from loaders.landing.pipelines import pipeline
from loaders.simulate import SimulationConfig, generate
from tests.support.project import Project

WORLD = SimulationConfig(seed=13, customers=20, orders_per_day=30)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_loaded_packages_are_deleted_and_the_folder_does_not_grow(project: Project) -> None:
    sizes = []
    for day in (1, 2, 3):
        generate(project.root, WORLD, through_day=day)
        project.load()
        for source in SOURCE_NAMES:
            pipe = pipeline(project.settings, source)
            assert not pipe.list_completed_load_packages(), f"{source} kept a loaded package after day {day}"
            assert not pipe.list_normalized_load_packages() and not pipe.list_extracted_load_packages()
        sizes.append(folder_bytes(project.pipelines_dir))
    # state and schemas only: three days of history make it no bigger than a few kilobytes more
    assert sizes[2] <= sizes[0] + 64 * 1024, sizes
