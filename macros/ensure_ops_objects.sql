{#- Run before every invocation: the ops schema, the incremental watermarks, and (PostgreSQL) the one
    function the cross-database macros need. All idempotent. -#}
{% macro ensure_ops_objects() -%}
    {{ return(adapter.dispatch('ensure_ops_objects', 'elt')()) }}
{%- endmacro %}

{% macro default__ensure_ops_objects() -%}
    create schema if not exists ops;
    create table if not exists ops.dbt_watermarks (
        model_name varchar(256) not null,
        watermark timestamp with time zone not null,
        saved_at timestamp with time zone not null
    );
    create or replace function ops.try_cast_timestamptz(value text) returns timestamptz
    language plpgsql immutable set timezone = 'UTC' as $fn$
    begin
        return value::timestamptz;
    exception when others then
        return null;
    end
    $fn$;
{%- endmacro %}

{% macro duckdb__ensure_ops_objects() -%}
    create schema if not exists ops;
    create table if not exists ops.dbt_watermarks (
        model_name varchar not null,
        watermark timestamp with time zone not null,
        saved_at timestamp with time zone not null
    );
{%- endmacro %}
