{#- The completed loads of a dlt source: `_dlt_loads` rows with `status = 0`, dlt's mark of a load whose
    package it committed. The one place the rule is written: staging shows only their rows, and the
    intermediate models consume them by id (published_batches, macros/incremental.sql). A query of one
    column, `load_id`. -#}
{% macro completed_loads(source_name) -%}
    select load_id from {{ source(source_name, '_dlt_loads') }} where status = 0
{%- endmacro %}

{#- The columns every staging model carries from its raw table, so every version can be ordered,
    re-found and shown in quarantine the same way. -#}
{% macro version_columns() -%}
        updated_at as version_at,
        _version as version_key,
        _record as record,
        _delivered_at as delivered_at,
        _delivery_seq as delivery_seq,
        _dlt_load_id as load_id,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at
{%- endmacro %}

{#- Text to a decimal wide enough to keep every digit that arrived; NULL when not a plain decimal. -#}
{% macro safe_decimal(expression) -%}
    case
        when {{ regexp_matches(expression, '^[+-]?[0-9]+([.][0-9]+)?$') }}
            then cast({{ expression }} as decimal(38, 10))
    end
{%- endmacro %}

{% macro safe_boolean(expression) -%}
    case
        when lower({{ expression }}) in ('true', 't', '1', 'yes', 'y') then true
        when lower({{ expression }}) in ('false', 'f', '0', 'no', 'n') then false
    end
{%- endmacro %}

{#- The columns of one order item, from the element `elements` of a version's `items` JSON array
    (see unnest_json_array): int_orders__versions unnests the versions it judges, order_items the
    canonical ones, with the same columns. -#}
{% macro order_item_columns(version) -%}
        {{ version }}.order_id,
        {{ version }}.version_key,
        coalesce(
            case
                when {{ regexp_matches(json_member_text('elements.item', 'line'), '^[0-9]+$') }}
                    then cast({{ json_member_text('elements.item', 'line') }} as integer)
            end,
            cast({{ json_array_position('elements') }} as integer)
        ) as line_number,
        {{ json_member_text('elements.item', 'sku') }} as sku,
        {{ json_member_text('elements.item', 'quantity') }} as quantity_text,
        {{ safe_decimal(json_member_text('elements.item', 'quantity')) }} as quantity,
        {{ json_member_text('elements.item', 'unit_price') }} as unit_price_text,
        {{ safe_decimal(json_member_text('elements.item', 'unit_price')) }} as unit_price,
        {{ json_is_object('elements.item') }} as is_object
{%- endmacro %}
