"""A mid-run crash resumes: what a killed run left behind is finished, or, when dlt's local working folder
itself was left half-written, rebuilt from the warehouse's last completed load. Nothing lands twice."""

from __future__ import annotations

import pytest

from loaders.core.registry import pipeline_name
from loaders.landing.pipelines import pipeline
from loaders.sources import spec
from tests.contract.records import order
from tests.support.project import land

pytestmark = pytest.mark.warehouses("postgres")


def test_a_package_extracted_before_a_crash_is_loaded_by_the_next_run(project) -> None:
    project.api_store.add_many([order("o1"), order("o2")])
    project.load("shop_api")
    project.api_store.add(order("o3", updated_at="2024-03-01T13:00:00Z"))
    # a run that died after extracting: its package waits in the local folder, not in the warehouse
    pipeline(project.settings, "shop_api").extract(spec("shop_api").dlt_source())
    assert project.scalar("select count(*) from raw_shop_api.orders") == 2

    report = land(project.settings, "shop_api")

    assert "o3" in {row[0] for row in project.query("select id from raw_shop_api.orders")}
    assert project.scalar("select count(*) from raw_shop_api.orders") == 3
    assert len(report.load_ids) >= 1


def test_a_half_written_local_folder_is_rebuilt_from_the_warehouse(project) -> None:
    project.api_store.add_many([order("o1"), order("o2")])
    project.load("shop_api")
    folder = project.pipelines_dir / pipeline_name("shop_api")
    state = folder / "state.json"
    state.write_text(state.read_text()[:20])  # killed while dlt rewrote its state file
    project.api_store.add(order("o3", updated_at="2024-03-01T13:00:00Z"))
    resets: list[str] = []

    land(project.settings, "shop_api", on_reset=lambda reason: resets.append(reason))

    assert resets and "dlt step" in resets[0]
    assert project.scalar("select count(*) from raw_shop_api.orders") == 3
    assert project.scalar("select count(distinct id) from raw_shop_api.orders") == 3
