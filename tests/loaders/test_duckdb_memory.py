"""DuckDB runs inside the loaders' process and inside dbt's: each is bounded by ELT_DUCKDB_MEMORY_LIMIT
(DuckDB's own default, 80 % of the machine, let every process's peak grow with the data)."""

from __future__ import annotations

import subprocess

import pytest

from loaders.core.settings import InvalidSetting, Settings
from loaders.landing import pipelines
from loaders.ops.dbt import dbt_environment, dbt_executable

LIMIT, AS_DUCKDB_SHOWS_IT = "300MB", "286.1 MiB"


def test_the_limit_reaches_the_loaders_and_dbt(tmp_path) -> None:
    settings = Settings.from_env(
        {
            "ELT_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
            "ELT_STATE_DIR": str(tmp_path / "state"),
            "ELT_DUCKDB_MEMORY_LIMIT": LIMIT,
        }
    )
    with pipelines.pipeline(settings, "shop_api").sql_client() as client:
        assert client.execute_sql("select current_setting('memory_limit')") == [(AS_DUCKDB_SHOWS_IT,)]

    env = dbt_environment(settings)
    env["DBT_TARGET_PATH"] = str(tmp_path / "target")
    show = subprocess.run(
        [dbt_executable(), "show", "--inline", "select current_setting('memory_limit') as memory_limit"],
        cwd=settings.project_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert show.returncode == 0, show.stdout + show.stderr
    assert AS_DUCKDB_SHOWS_IT in show.stdout


@pytest.mark.parametrize("value", ["lots", "1 G", "-5MB"])
def test_a_limit_that_is_not_a_size_names_its_variable(value: str) -> None:
    with pytest.raises(InvalidSetting, match=r"^ELT_DUCKDB_MEMORY_LIMIT: .* not a size such as 512MB"):
        Settings.from_env({"ELT_DUCKDB_MEMORY_LIMIT": value})
