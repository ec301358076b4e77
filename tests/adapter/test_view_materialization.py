"""The project's PostgreSQL view materialization (macros/materializations/view.sql) where dbt's own suite
says nothing: what it was written for (a view replaced in place keeps its identity and the views reading
it), and where it must still behave as dbt's own — a materialized view replaced by a view, the relation
cache after a cascade, the model's sql_header, grants removed altogether — and the one role the grants
skip while it does not exist (macros/grants.sql). dbt's fixtures, with the project's macros and config
(conftest.py); PostgreSQL only: on DuckDB the project overrides none of it.
"""

from __future__ import annotations

import pytest
from dbt.tests.util import relation_from_name, run_dbt, run_dbt_and_capture, write_file

pytestmark = pytest.mark.parametrize("dbt_profile_target", ["postgres"], indirect=True, scope="class")

BASE = "select 1 as id, 'a' as name"
READER = "select id, name from {{ ref('base_view') }}"


def oid(project, name: str) -> int:
    return project.run_sql(f"select '{relation_from_name(project.adapter, name)}'::regclass::oid", fetch="one")[0]


def value(project, sql: str, name: str):
    """The one value of `sql`, its `{}` the relation of model `name`."""
    return project.run_sql(sql.format(relation_from_name(project.adapter, name)), fetch="one")[0]


def relkind(project, name: str) -> str | None:
    relation = relation_from_name(project.adapter, name)
    found = project.run_sql(f"select relkind::text from pg_class where oid = to_regclass('{relation}')", fetch="one")
    return found[0] if found else None


class TestViewReplacedInPlace:
    @pytest.fixture(scope="class")
    def models(self):
        return {"base_view.sql": BASE, "reader_view.sql": READER}

    def test_same_or_appended_columns_keep_the_view_and_its_readers(self, project):
        run_dbt(["run"])
        before = oid(project, "base_view"), oid(project, "reader_view")

        write_file("select 1 as id, 'b' as name", project.project_root, "models", "base_view.sql")
        run_dbt(["run", "--select", "base_view"])
        write_file("select 1 as id, 'b' as name, 2 as added", project.project_root, "models", "base_view.sql")
        run_dbt(["run", "--select", "base_view"])

        assert (oid(project, "base_view"), oid(project, "reader_view")) == before
        assert value(project, "select name from {}", "reader_view") == "b"

    def test_changed_columns_drop_the_view_with_its_readers_and_the_build_creates_both(self, project):
        write_file("select 'x' as id, 'c' as name", project.project_root, "models", "base_view.sql")  # id: int -> text
        results = run_dbt(["run"])
        assert [r.status for r in results] == ["success", "success"]
        assert value(project, "select id from {}", "reader_view") == "x"


class TestMaterializedViewReadingAView:
    """A view read by a materialized view: a change of the view's columns drops the materialized view too
    (CASCADE); dbt's cache must know, or the materialized view's model meets a relation that is gone."""

    @pytest.fixture(scope="class")
    def models(self):
        return {
            "base_view.sql": BASE,
            "summary.sql": "{{ config(materialized='materialized_view') }}\n" + READER,
        }

    def test_the_next_runs_rebuild_what_the_cascade_dropped(self, project):
        run_dbt(["run"])
        write_file("select 'two' as id, 'b' as name", project.project_root, "models", "base_view.sql")

        results = run_dbt(["run"])  # base_view's id changes type: dropped with summary, both created again
        assert [r.status for r in results] == ["success", "success"]
        assert relkind(project, "summary") == "m"
        assert value(project, "select id from {}", "summary") == "two"
        results = run_dbt(["run"])  # and again, from a cache read afresh
        assert [r.status for r in results] == ["success", "success"]

        write_file("select 3 as id, 'c' as name", project.project_root, "models", "base_view.sql")
        run_dbt(["run", "--select", "base_view"])  # the view alone: summary goes with the old view...
        assert relkind(project, "summary") is None
        results = run_dbt(["run"])  # ...and the next run creates it
        assert [r.status for r in results] == ["success", "success"]
        assert relkind(project, "summary") == "m"


MATERIALIZED = """
{{ config(materialized=var('materialized')) }}
select 1 as id
"""


class TestMaterializedViewToView:
    @pytest.fixture(scope="class")
    def models(self):
        return {"swapped.sql": MATERIALIZED}

    @pytest.mark.parametrize("extra", [[], ["--full-refresh"]])
    def test_a_materialized_view_is_replaced_by_a_view(self, project, extra):
        run_dbt(["run", "--vars", "materialized: materialized_view"])
        assert relkind(project, "swapped") == "m"
        run_dbt(["run", "--vars", "materialized: view", *extra])
        assert relkind(project, "swapped") == "v"


HEADER_VIEW = """
{% call set_sql_header(config) %}
create or replace function {{ target.schema }}.header_probe() returns integer language sql as $$ select 7 $$;
{% endcall %}
select {{ target.schema }}.header_probe() as probe
"""


class TestViewSqlHeader:
    @pytest.fixture(scope="class")
    def models(self):
        return {"with_header.sql": HEADER_VIEW}

    def test_the_header_runs_before_the_view_is_created_and_replaced(self, project):
        run_dbt(["run"])  # created: the function exists only if the header ran first
        project.run_sql(f"drop function {project.test_schema}.header_probe() cascade")  # and the view with it
        project.run_sql(f"create view {project.test_schema}.with_header as select 7 as probe")
        run_dbt(["run"])  # replaced in place: the header runs before the columns are compared and the replace
        relation = relation_from_name(project.adapter, "with_header")
        assert project.run_sql(f"select probe from {relation}", fetch="one") == (7,)


GRANTED = """
version: 2
models:
  - name: granted
    config:
      grants:
        select: ["{{ env_var('DBT_TEST_USER_1') }}", "{{ env_var('DBT_TEST_USER_2') }}"]
"""

UNGRANTED = """
version: 2
models:
  - name: granted
    config:
      grants: {}
"""


class TestViewGrantsRemoved:
    @pytest.fixture(scope="class")
    def models(self):
        return {"granted.sql": BASE, "schema.yml": GRANTED}

    @pytest.fixture(scope="class")
    def project_config_update(self):
        return {"models": {"+grants": {}}}  # not the project's reader grant: this model's config is all

    def grantees(self, project) -> set[str]:
        rows = project.run_sql(
            "select grantee from information_schema.role_table_grants"
            f" where table_schema = '{project.test_schema}' and table_name = 'granted' and grantee <> current_user",
            fetch="all",
        )
        return {grantee for (grantee,) in rows}

    def test_a_view_without_grants_keeps_none_of_the_old_ones(self, project):
        import os

        run_dbt(["run"])
        assert self.grantees(project) == {os.environ["DBT_TEST_USER_1"], os.environ["DBT_TEST_USER_2"]}
        write_file(UNGRANTED, project.project_root, "models", "schema.yml")
        run_dbt(["run"])  # replaced in place, as dbt's swap would leave it: no privileges
        assert self.grantees(project) == set()


class TestMissingReaderRole:
    """The reader role (ELT_READER_ROLE) is skipped while it does not exist; any other grantee is not
    (BaseInvalidGrants)."""

    @pytest.fixture(scope="class")
    def models(self):
        return {"canonical.sql": "{{ config(materialized='table') }}\n" + BASE}

    def test_a_build_before_elt_grants_succeeds_and_says_so(self, project, monkeypatch):
        monkeypatch.setenv("ELT_READER_ROLE", "elt_reader_not_created")
        _, log = run_dbt_and_capture(["run"])
        assert "Role elt_reader_not_created does not exist" in log
