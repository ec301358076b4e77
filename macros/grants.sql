{#- dbt's `grants` config (the marts grant SELECT to the reader role, dbt_project.yml), per warehouse.

    PostgreSQL: dbt's own grants — granted inside the model's transaction, before a `--full-refresh` swap
    commits, so a reader never meets a table it may not read; what the config no longer lists is
    revoked; a grantee that does not exist fails the model with PostgreSQL's message.

    One exception, for the one role this project's own config names: the reader role (ELT_READER_ROLE,
    default elt_reader), which `elt grants` creates. While it does not exist it is left out of the grant
    (the log says so), so a warehouse where `elt grants` has not run yet (a developer's, the test
    suite's, one an administrator builds before the roles) builds; the first build after `elt grants`
    grants it, and `elt grants` itself grants SELECT on the tables already built. Any other grantee a
    model's config names is granted as dbt grants it.

    DuckDB has no roles: the config is a no-op (without dbt-duckdb's warning on every invocation); nor has
    open-source Spark. -#}
{% macro postgres__apply_grants(relation, grant_config, should_revoke=True) -%}
    {%- set reader = env_var('ELT_READER_ROLE', 'elt_reader') -%}
    {%- set named = [] -%}
    {%- for grantees in (grant_config or {}).values() -%}
        {%- do named.extend(grantees) -%}
    {%- endfor -%}
    {%- if execute and reader in named -%}
        {%- set exists = run_query(
            "select count(*) from pg_roles where rolname = '" ~ (reader | replace("'", "''")) ~ "'"
        ).columns[0].values()[0] -%}
        {%- if exists == 0 -%}
            {{ log("Role " ~ reader ~ " does not exist (`elt grants` creates it): " ~ relation.render()
                ~ " is not granted to it", info=True) }}
            {%- set without_reader = {} -%}
            {%- for privilege, grantees in grant_config.items() -%}
                {%- do without_reader.update({privilege: grantees | reject('equalto', reader) | list}) -%}
            {%- endfor -%}
            {%- set grant_config = without_reader -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(default__apply_grants(relation, grant_config, should_revoke)) }}
{%- endmacro %}

{% macro duckdb__apply_grants(relation, grant_config, should_revoke=True) -%}
{%- endmacro %}

{#- Open-source Spark has no privileges (its Thrift server refuses SHOW GRANTS): a no-op. On a platform
    with table ACLs (Databricks' Unity Catalog), delete this override and dbt-spark grants as configured. -#}
{% macro spark__apply_grants(relation, grant_config, should_revoke=True) -%}
{%- endmacro %}
