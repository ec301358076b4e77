"""dbt's conformance suite (dbt-tests-adapter) for what the project overrides or configures, on DuckDB and
PostgreSQL, with the project's macros and model config (see conftest.py): the view materialization
(PostgreSQL), grants, model contracts, the incremental materialization the marts and the intermediate
models use, docs persisted as comments. Each class is dbt's own, unchanged, except the DuckDB spellings
of the data types that dbt-duckdb's own suite gives the constraint classes.

The grants classes run on PostgreSQL only: DuckDB has no roles (dbt-duckdb does not run them either).
"""

from __future__ import annotations

import pytest
from dbt.tests.adapter.basic.test_base import BaseSimpleMaterializations
from dbt.tests.adapter.basic.test_empty import BaseEmpty
from dbt.tests.adapter.basic.test_ephemeral import BaseEphemeral
from dbt.tests.adapter.basic.test_incremental import BaseIncremental
from dbt.tests.adapter.constraints.test_constraints import (
    BaseConstraintsRuntimeDdlEnforcement,
    BaseTableConstraintsColumnsEqual,
    BaseViewConstraintsColumnsEqual,
)
from dbt.tests.adapter.grants.test_incremental_grants import BaseIncrementalGrants
from dbt.tests.adapter.grants.test_invalid_grants import BaseInvalidGrants
from dbt.tests.adapter.grants.test_model_grants import BaseModelGrants
from dbt.tests.adapter.grants.test_seed_grants import BaseSeedGrants
from dbt.tests.adapter.incremental.test_incremental_on_schema_change import BaseIncrementalOnSchemaChange
from dbt.tests.adapter.incremental.test_incremental_unique_id import BaseIncrementalUniqueKey
from dbt.tests.adapter.persist_docs.test_persist_docs import BasePersistDocs
from dbt.tests.adapter.relations.test_changing_relation_type import BaseChangeRelationTypeValidator

postgres_only = pytest.mark.parametrize("dbt_profile_target", ["postgres"], indirect=True, scope="class")


class TestSimpleMaterializations(BaseSimpleMaterializations):
    pass


class TestChangeRelationTypes(BaseChangeRelationTypeValidator):
    pass


class TestEmpty(BaseEmpty):
    pass


class TestEphemeral(BaseEphemeral):
    pass


class TestIncremental(BaseIncremental):
    pass


class TestIncrementalUniqueKey(BaseIncrementalUniqueKey):
    pass


class TestIncrementalOnSchemaChange(BaseIncrementalOnSchemaChange):
    pass


class TestPersistDocs(BasePersistDocs):
    pass


@postgres_only
class TestModelGrants(BaseModelGrants):
    pass


@postgres_only
class TestSeedGrants(BaseSeedGrants):
    pass


@postgres_only
class TestIncrementalGrants(BaseIncrementalGrants):
    pass


@postgres_only
class TestInvalidGrants(BaseInvalidGrants):
    pass


class DataTypesOfTheWarehouse:
    """The data types the constraint classes loop over (a dbt run each): of dbt's list (PostgreSQL's
    spellings; DuckDB's as dbt-duckdb's own suite gives them), those the project's model contracts declare
    (docs/contract.md: text, integers, booleans, UTC instants, numerics). The timestamp without time zone,
    the arrays and json, which no contract of the project has, are left out: they cost 8 of the 20 dbt
    runs of each class."""

    @pytest.fixture
    def string_type(self, dbt_profile_target):
        return "VARCHAR" if dbt_profile_target["type"] == "duckdb" else "TEXT"

    @pytest.fixture
    def data_types(self, dbt_profile_target, schema_int_type, int_type, string_type):
        # sql_column_value, schema_data_type, error_data_type
        if dbt_profile_target["type"] == "duckdb":
            instant = ["'2013-11-03 00:00:00-07'::timestamptz", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"]
        else:
            instant = ["'2013-11-03 00:00:00-07'::timestamptz", "timestamptz", "DATETIMETZ"]
        return [
            ["1", schema_int_type, int_type],
            ["'1'", string_type, string_type],
            ["true", "bool", "BOOL"],
            instant,
            ["'1'::numeric", "numeric", "DECIMAL"],
        ]


class TestViewConstraintsColumnsEqual(DataTypesOfTheWarehouse, BaseViewConstraintsColumnsEqual):
    pass


class TestTableConstraintsColumnsEqual(DataTypesOfTheWarehouse, BaseTableConstraintsColumnsEqual):
    pass


class TestConstraintsRuntimeDdlEnforcement(BaseConstraintsRuntimeDdlEnforcement):
    pass
