{#- Where DuckDB and PostgreSQL spell a thing differently. One dispatching macro each; models never
    branch on the adapter themselves. -#}

{% macro regexp_matches(expression, pattern) -%}
    {{ return(adapter.dispatch('regexp_matches', 'elt')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regexp_matches(expression, pattern) -%}
    coalesce(({{ expression }}) ~ '{{ pattern }}', false)
{%- endmacro %}

{% macro duckdb__regexp_matches(expression, pattern) -%}
    coalesce(regexp_matches({{ expression }}, '{{ pattern }}'), false)
{%- endmacro %}


{#- Text to timestamptz, NULL when the text is not an ISO-8601 date-time. The shape is checked first
    so both warehouses accept exactly the same texts (PostgreSQL alone would take 'now' or 'epoch'). -#}
{% macro safe_timestamp(expression) -%}
    case
        when {{ regexp_matches(expression, '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$') }}
            then {{ adapter.dispatch('try_cast_timestamp', 'elt')(expression) }}
    end
{%- endmacro %}

{% macro default__try_cast_timestamp(expression) -%}
    ops.try_cast_timestamptz({{ expression }})
{%- endmacro %}

{% macro duckdb__try_cast_timestamp(expression) -%}
    try_cast({{ expression }} as timestamptz)
{%- endmacro %}


{#- dlt's load id is the Unix time its extract started, as text. -#}
{% macro load_id_to_timestamp(expression) -%}
    to_timestamp(cast({{ expression }} as double precision))
{%- endmacro %}


{#- A lateral join that turns a JSON-array text column into one row per element: `<alias>.item` (JSON)
    and `<alias>.position` (1-based). Anything that is not an array yields no rows. -#}
{% macro unnest_json_array(column, alias) -%}
    {{ return(adapter.dispatch('unnest_json_array', 'elt')(column, alias)) }}
{%- endmacro %}

{% macro default__unnest_json_array(column, alias) -%}
    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(cast({{ column }} as jsonb)) = 'array' then cast({{ column }} as jsonb) else '[]'::jsonb end
    ) with ordinality as {{ alias }} (item, position)
{%- endmacro %}

{% macro duckdb__unnest_json_array(column, alias) -%}
    cross join lateral (
        select
            elements.value as item,
            cast(elements.key as integer) + 1 as position
        from json_each(case when json_type(cast({{ column }} as json)) = 'ARRAY' then cast({{ column }} as json) else '[]' end) as elements
    ) as {{ alias }}
{%- endmacro %}


{#- The text of a JSON object's member (NULL when absent, or when the value is not an object). -#}
{% macro json_member_text(json_value, member) -%}
    ({{ json_value }} ->> '{{ member }}')
{%- endmacro %}

{% macro json_is_object(json_value) -%}
    {{ return(adapter.dispatch('json_is_object', 'elt')(json_value)) }}
{%- endmacro %}

{% macro default__json_is_object(json_value) -%}
    (jsonb_typeof({{ json_value }}) = 'object')
{%- endmacro %}

{% macro duckdb__json_is_object(json_value) -%}
    (json_type({{ json_value }}) = 'OBJECT')
{%- endmacro %}


{#- The UTC calendar date of a timestamptz, whatever the session's time zone. -#}
{% macro utc_date(expression) -%}
    cast(({{ expression }} at time zone 'UTC') as date)
{%- endmacro %}
