"""dbt's conformance class for the incremental strategy the project adds on Spark (`make test-spark`).

dbt-spark has no `delete+insert`; macros/materializations/spark_delete_insert.sql adds it with the meaning
it has on DuckDB and PostgreSQL: the rows a run selects replace every row of their keys, and a model
without a key (none, '' or []) appends. dbt's own class, unchanged, runs every form of unique key the
strategy must accept (a string, lists of one to three columns, a duplicated one) and those it must refuse
(a column that does not exist), with the project's hooks and macros (conftest.py).
"""

from __future__ import annotations

import pytest
from dbt.tests.adapter.incremental.test_incremental_unique_id import BaseIncrementalUniqueKey

spark_only = pytest.mark.parametrize("dbt_profile_target", ["spark"], indirect=True, scope="class")


@spark_only
class TestIncrementalUniqueKeySpark(BaseIncrementalUniqueKey):
    @pytest.fixture(scope="class")
    def project_config_update(self):
        # the strategy of the project's incremental models (dbt_project.yml), on dbt-spark's default format;
        # the class's seed writes its dates as text, which Spark 4's ANSI store assignment refuses to put in
        # a DATE column: its session casts them as Spark 3 did (the seed's load only, not the models')
        return {
            "models": {"+incremental_strategy": "delete+insert"},
            "seeds": {"+pre-hook": ["set spark.sql.storeAssignmentPolicy=LEGACY"]},
        }
