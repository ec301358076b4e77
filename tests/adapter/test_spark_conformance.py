"""dbt's conformance class for the incremental strategy the project adds on Spark (`make test-spark`).

dbt-spark has no `delete+insert`; macros/materializations/spark_delete_insert.sql adds it with the meaning
it has on DuckDB and PostgreSQL: the rows a run selects replace every row of their keys, and a model
without a key (none, '' or []) appends. dbt's own class runs every form of unique key the strategy must
accept (a string, lists of one to three columns, a duplicated one) and those it must refuse (a column that
does not exist), with the project's hooks and macros (conftest.py).

Its models, expectations and checks are dbt's, unchanged. Its data is written for warehouses that cast a
quoted date into a DATE column; Spark 4's ANSI store assignment refuses that ("Cannot safely cast STRING to
DATE"), so the seed loads under Spark 3's policy (a pre-hook of the seed only) and the class's INSERT
statements spell their dates as DATE literals. The models themselves run under Spark's defaults.
"""

from __future__ import annotations

import re

import pytest
from dbt.tests.adapter.incremental import test_incremental_unique_id as dbt_class
from dbt.tests.adapter.incremental.test_incremental_unique_id import BaseIncrementalUniqueKey

spark_only = pytest.mark.parametrize("dbt_profile_target", ["spark"], indirect=True, scope="class")
QUOTED_DATE = re.compile(r"'(\d{4}-\d{2}-\d{2})'")


def typed_dates(sql: str) -> str:
    """The class's INSERT statements with their quoted dates as DATE literals."""
    return QUOTED_DATE.sub(r"date'\1'", sql)


@spark_only
class TestIncrementalUniqueKeySpark(BaseIncrementalUniqueKey):
    @pytest.fixture(scope="class")
    def seeds(self):
        return {
            "duplicate_insert.sql": typed_dates(dbt_class.seeds__duplicate_insert_sql),
            "seed.csv": dbt_class.seeds__seed_csv,
            "add_new_rows.sql": typed_dates(dbt_class.seeds__add_new_rows_sql),
        }

    @pytest.fixture(scope="class")
    def project_config_update(self):
        # the strategy of the project's incremental models (dbt_project.yml), on dbt-spark's default format
        return {
            "models": {"+incremental_strategy": "delete+insert"},
            "seeds": {"+pre-hook": ["set spark.sql.storeAssignmentPolicy=LEGACY"]},
        }
