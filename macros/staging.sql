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
    (see unnest_json_array): the staging view of all items, and the models that unnest only the
    versions they hold. -#}
{% macro order_item_columns(version) -%}
        {{ version }}.order_id,
        {{ version }}.version_key,
        coalesce(
            case
                when {{ regexp_matches(json_member_text('elements.item', 'line'), '^[0-9]+$') }}
                    then cast({{ json_member_text('elements.item', 'line') }} as integer)
            end,
            cast(elements.position as integer)
        ) as line_number,
        {{ json_member_text('elements.item', 'sku') }} as sku,
        {{ json_member_text('elements.item', 'quantity') }} as quantity_text,
        {{ safe_decimal(json_member_text('elements.item', 'quantity')) }} as quantity,
        {{ json_member_text('elements.item', 'unit_price') }} as unit_price_text,
        {{ safe_decimal(json_member_text('elements.item', 'unit_price')) }} as unit_price,
        {{ json_is_object('elements.item') }} as is_object
{%- endmacro %}
