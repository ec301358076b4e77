{#- PostgreSQL views (staging, ops): replaced in place, in the model's transaction, after its pre-hook
    has taken the writer lock (macros/ensure_ops_objects.sql).

    dbt's own view materialization renames the old view away and drops it with CASCADE after the commit,
    outside the lock, deciding from its relation cache (read when the invocation started) what exists. A
    view that reads another view (`stg_shop_api__order_items` reads `stg_shop_api__orders`) is dropped by
    that cascade; a second dbt (a plain `dbt build` beside a scheduled `elt run`) then meets a cache that
    no longer matches the database and fails ("already exists"). `create or replace view` keeps the view's
    identity, so the views that read it stay; when the columns changed (PostgreSQL replaces a view only
    with the same columns first), it is dropped with its dependents and created again, as dbt would, and
    the dependents are rebuilt after it in the same build. -#}
{% materialization view, adapter='postgres' %}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set grant_config = config.get('grants') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('main') -%}
        do $replace$
        begin
            execute $view$ create or replace view {{ target_relation }} as (
                {{ sql }}
            ) $view$;
        exception when invalid_table_definition or feature_not_supported then
            execute $drop$ drop view if exists {{ target_relation }} cascade $drop$;
            execute $view$ create view {{ target_relation }} as (
                {{ sql }}
            ) $view$;
        end
        $replace$
    {%- endcall %}

    {% do apply_grants(target_relation, grant_config, should_revoke=False) %}
    {% do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
