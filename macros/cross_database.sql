{#- Where DuckDB, PostgreSQL and Spark spell a thing differently. One dispatching macro each; models never
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

{#- Spark reads a backslash in a string literal as an escape: doubled, the pattern reaches Java's regex. -#}
{% macro spark__regexp_matches(expression, pattern) -%}
    coalesce(({{ expression }}) rlike '{{ pattern | replace("\\", "\\\\") }}', false)
{%- endmacro %}


{#- The column types the models cast to. Spark has one text type and one timestamp type (an instant,
    shown in the session's zone); its `varchar` needs a length. -#}
{% macro type_text(length=none) -%}
    {{ return(adapter.dispatch('type_text', 'elt')(length)) }}
{%- endmacro %}

{% macro default__type_text(length) -%}
    varchar{{ '(' ~ length ~ ')' if length }}
{%- endmacro %}

{% macro spark__type_text(length) -%}
    string
{%- endmacro %}

{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'elt')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}
    timestamp with time zone
{%- endmacro %}

{% macro spark__type_timestamptz() -%}
    timestamp
{%- endmacro %}


{#- Text to timestamptz by the project's one timestamp grammar, NULL for any other text. The pattern is
    loaders/timestamps.py's TIMESTAMP_GRAMMAR character for character (its docstring states the grammar;
    tests/contract/test_timestamp_grammar.py holds all three readers to one table). The shape is checked
    first so both warehouses accept exactly the same texts (PostgreSQL alone would take 'now', '24:00' or
    a leap second). A text without a zone is UTC: it is given an explicit '+00:00' (a date alone, midnight)
    before the cast, so the session's TimeZone never decides the instant. The range check keeps the
    instants Python can hold (years 0001-9999 in UTC). -#}
{% macro safe_timestamp(expression) -%}
    {%- set instant = adapter.dispatch('try_cast_timestamp', 'elt')(timestamp_text_with_offset(expression)) -%}
    case
        when {{ regexp_matches(expression, '^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([Tt ]([01][0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9])([.]([0-9]{1,6}))?)?([Zz]|([+-])(0[0-9]|1[0-4])(:?([0-5][0-9]))?)?)?$') }}
            and {{ instant }} between cast('0001-01-01 00:00:00+00:00' as {{ type_timestamptz() }})
            and cast('9999-12-31 23:59:59.999999+00:00' as {{ type_timestamptz() }})
            then {{ instant }}
    end
{%- endmacro %}

{#- A text of the grammar with its zone spelled out: upper case (`T`, `Z`: DuckDB reads no `z`), and
    '+00:00' appended when it has none. -#}
{% macro timestamp_text_with_offset(expression) -%}
    case
        when length({{ expression }}) = 10 then {{ expression }} || ' 00:00:00+00:00'
        when {{ regexp_matches(expression, '([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$') }} then upper({{ expression }})
        else upper({{ expression }}) || '+00:00'
    end
{%- endmacro %}

{% macro default__try_cast_timestamp(expression) -%}
    ops.try_cast_timestamptz({{ expression }})
{%- endmacro %}

{% macro duckdb__try_cast_timestamp(expression) -%}
    try_cast({{ expression }} as timestamptz)
{%- endmacro %}

{% macro spark__try_cast_timestamp(expression) -%}
    try_cast({{ expression }} as timestamp)
{%- endmacro %}


{#- dlt's load id is the Unix time its extract started, as text. -#}
{% macro load_id_to_timestamp(expression) -%}
    {{ return(adapter.dispatch('load_id_to_timestamp', 'elt')(expression)) }}
{%- endmacro %}

{% macro default__load_id_to_timestamp(expression) -%}
    to_timestamp(cast({{ expression }} as double precision))
{%- endmacro %}

{% macro spark__load_id_to_timestamp(expression) -%}
    timestamp_seconds(cast({{ expression }} as double))
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

{#- Spark's from_json would read an object as an array of one: only a text that starts as an array is read. -#}
{% macro spark__unnest_json_array(column, alias) -%}
    lateral view posexplode(
        case when ltrim({{ column }}) like '[%' then from_json({{ column }}, 'array<string>') end
    ) {{ alias }} as position_from_0, item
{%- endmacro %}

{#- The 1-based position of an element of `unnest_json_array` (Spark's posexplode counts from 0). -#}
{% macro json_array_position(alias) -%}
    {{ return(adapter.dispatch('json_array_position', 'elt')(alias)) }}
{%- endmacro %}

{% macro default__json_array_position(alias) -%}
    {{ alias }}.position
{%- endmacro %}

{% macro spark__json_array_position(alias) -%}
    ({{ alias }}.position_from_0 + 1)
{%- endmacro %}


{#- The text of a JSON object's member (NULL when absent, or when the value is not an object). -#}
{% macro json_member_text(json_value, member) -%}
    {{ return(adapter.dispatch('json_member_text', 'elt')(json_value, member)) }}
{%- endmacro %}

{% macro default__json_member_text(json_value, member) -%}
    ({{ json_value }} ->> '{{ member }}')
{%- endmacro %}

{% macro spark__json_member_text(json_value, member) -%}
    get_json_object({{ json_value }}, '$.{{ member }}')
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

{% macro spark__json_is_object(json_value) -%}
    (json_object_keys({{ json_value }}) is not null)
{%- endmacro %}


{#- The UTC calendar date of a timestamptz, whatever the session's time zone. -#}
{% macro utc_date(expression) -%}
    {{ return(adapter.dispatch('utc_date', 'elt')(expression)) }}
{%- endmacro %}

{% macro default__utc_date(expression) -%}
    cast(({{ expression }} at time zone 'UTC') as date)
{%- endmacro %}

{#- A Spark timestamp is an instant shown in the session's zone: shifted so that zone shows UTC's wall time. -#}
{% macro spark__utc_date(expression) -%}
    cast(to_utc_timestamp({{ expression }}, current_timezone()) as date)
{%- endmacro %}


{#- The values of a text column as one sorted, comma-separated text ('' for none), as an aggregate. -#}
{% macro sorted_text_list(column) -%}
    {{ return(adapter.dispatch('sorted_text_list', 'elt')(column)) }}
{%- endmacro %}

{% macro default__sorted_text_list(column) -%}
    string_agg({{ column }}, ',' order by {{ column }})
{%- endmacro %}

{% macro spark__sorted_text_list(column) -%}
    array_join(array_sort(collect_list({{ column }})), ',')
{%- endmacro %}


{#- Pre-hook of every model and seed: the session reads and shows times in UTC (contract 2.1). DuckDB's
    sessions are pinned in profiles.yml too; dbt-postgres has no profile field for it. The SQL does not
    rely on this pin (safe_timestamp and utc_date name UTC themselves); it keeps what a session prints
    and any text cast by a later change from depending on the server's default. DuckDB and PostgreSQL spell it alike. -#}
{% macro pin_session_to_utc() -%}
    {{ return(adapter.dispatch('pin_session_to_utc', 'elt')()) }}
{%- endmacro %}

{% macro default__pin_session_to_utc() -%}
    set timezone = 'UTC'
{%- endmacro %}

{% macro spark__pin_session_to_utc() -%}
    set time zone 'UTC'
{%- endmacro %}

{#- `key` is one of the values `query` returns. On PostgreSQL as `= any(array(query))`: the planner then looks
    each value up in the key's index, where for `in (query)` it estimates the set from statistics and, for
    a few thousand keys, prefers one pass over the whole table. The price: it cannot estimate how many rows
    match (it assumes a handful), so use it only where nothing is joined to the result on that estimate —
    the versions of the affected keys feed joins, and a nested loop over 60 000 of them took 10 s. -#}
{% macro key_in(key, query) -%}
    {{ return(adapter.dispatch('key_in', 'elt')(key, query)) }}
{%- endmacro %}

{% macro default__key_in(key, query) -%}
    {{ key }} = any(array({{ query }}))
{%- endmacro %}

{% macro duckdb__key_in(key, query) -%}
    {{ key }} in ({{ query }})
{%- endmacro %}

{% macro spark__key_in(key, query) -%}
    {{ key }} in ({{ query }})
{%- endmacro %}
