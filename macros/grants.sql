{#- dbt's `grants` config (the marts grant SELECT to the reader role, dbt_project.yml), per warehouse.

    PostgreSQL: dbt grants inside the model's transaction, before a `--full-refresh` swap commits, so a
    reader never meets a table it may not read. A grantee role that does not exist is skipped instead of
    failing the model: a warehouse where `elt grants` never ran (a developer's, a test's) builds as
    before, and the grant is made by the first build after the role exists (`elt grants` itself grants
    SELECT on the tables already built).

    DuckDB has no roles: the config is a no-op (without dbt-duckdb's warning on every invocation); nor has
    open-source Spark. -#}
{% macro postgres__get_grant_sql(relation, privilege, grantees) -%}
    do $elt_grant$
    begin
    {%- for grantee in grantees %}
        if exists (select 1 from pg_roles where rolname = '{{ grantee | replace("'", "''") }}') then
            grant {{ privilege }} on {{ relation.render() }} to {{ adapter.quote(grantee) }};
        end if;
    {%- endfor %}
    end
    $elt_grant$
{%- endmacro %}

{% macro duckdb__apply_grants(relation, grant_config, should_revoke=True) -%}
{%- endmacro %}

{#- Open-source Spark has no privileges (its Thrift server refuses SHOW GRANTS): a no-op. On a platform
    with table ACLs (Databricks' Unity Catalog), delete this override and dbt-spark grants as configured. -#}
{% macro spark__apply_grants(relation, grant_config, should_revoke=True) -%}
{%- endmacro %}
