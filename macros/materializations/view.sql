{#- PostgreSQL views (staging, ops): replaced in place, in the model's transaction, after its pre-hook
    has taken the writer lock (macros/ensure_ops_objects.sql).

    Why: dbt's own view materialization creates the new view under a temporary name, renames the old one
    away and drops it with CASCADE after the commit, outside the lock. A second dbt (a plain `dbt build`
    beside a scheduled `elt run`) could then meet a relation dbt's cache did not expect and fail
    ("already exists"). Here everything happens inside the locked transaction:

    - a view whose columns PostgreSQL can keep is replaced with `create or replace view` (dbt's own
      get_replace_view_sql: sql_header and the model contract's column check included), so it keeps its
      identity and the views that read it stay;
    - a view whose columns changed (PostgreSQL replaces a view only when the old columns come first,
      with the same names, types and collations), or a relation of another type (a table, an incremental
      model, a materialized view), is dropped first with dbt's adapter.drop_relation: CASCADE, as dbt's
      own materialization does, and dbt's relation cache forgets it and its dependents with it, so the
      models built after it in the same invocation create them again instead of meeting a relation that
      is gone ("relation does not exist");
    - grants: a view replaced in place keeps its privileges, so what `grants` no longer lists is revoked
      (a view recreated has none, as with dbt's swap).

    Otherwise dbt's own: hooks, persist_docs, the returned relations. -#}
{% materialization view, adapter='postgres' %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set grant_config = config.get('grants') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- `BEGIN` happens here; the pre-hooks take the writer lock
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set replaced_in_place = existing_relation is not none and existing_relation.is_view
        and view_keeps_its_columns(existing_relation, sql) -%}
    {%- if existing_relation is not none and not replaced_in_place -%}
        {{ log("Dropping relation " ~ existing_relation.render() ~ " (" ~ existing_relation.type ~ ") to create view " ~ target_relation.render()) }}
        {%- do adapter.drop_relation(existing_relation) -%}
    {%- endif %}

    {% call statement('main') -%}
        {{ get_replace_view_sql(target_relation, sql) }}
    {%- endcall %}

    {% do apply_view_grants(target_relation, grant_config, replaced_in_place) %}
    {% do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- Whether `create or replace view` can replace the view `existing` by the query `sql`, asked of
    PostgreSQL itself: the query becomes a temporary view (after the model's sql_header, which the query
    may need), whose columns are compared with the old ones as PostgreSQL compares them (the old columns
    first, same name, type, type modifier and collation; new ones may follow). -#}
{% macro view_keeps_its_columns(existing, sql) -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {%- call statement('view_probe') -%}
        {{ sql_header if sql_header is not none }}
        create temporary view elt_view_probe as (
            {{ sql }}
        )
    {%- endcall -%}
    {%- set changed_columns -%}
        select count(*)
        from pg_attribute as old
        left join pg_attribute as new
            on new.attrelid = 'pg_temp.elt_view_probe'::regclass and new.attnum = old.attnum
        where
            old.attrelid = '{{ existing.include(database=false) }}'::regclass
            and old.attnum > 0
            and not old.attisdropped
            and (
                new.attnum is null
                or new.attname <> old.attname
                or new.atttypid <> old.atttypid
                or new.atttypmod <> old.atttypmod
                or new.attcollation <> old.attcollation
            )
    {%- endset -%}
    {%- set changed = run_query(changed_columns).columns[0].values()[0] -%}
    {%- call statement('view_probe_drop') -%}
        drop view pg_temp.elt_view_probe
    {%- endcall -%}
    {{ return(changed == 0) }}
{%- endmacro %}


{#- The grants of a view: dbt's apply_grants; a view replaced in place kept its privileges, so they are
    compared with the config and what it no longer lists is revoked — all of them when it lists none
    (dbt's apply_grants does nothing then, since a view it recreates has none). -#}
{% macro apply_view_grants(relation, grant_config, replaced_in_place) -%}
    {%- if grant_config or not replaced_in_place -%}
        {%- do apply_grants(relation, grant_config, should_revoke=replaced_in_place) -%}
    {%- else -%}
        {%- set current_grants = adapter.standardize_grants_dict(run_query(get_show_grant_sql(relation))) -%}
        {%- set revokes = get_dcl_statement_list(relation, current_grants, get_revoke_sql) -%}
        {%- if revokes -%}
            {%- do call_dcl_statements(revokes) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
