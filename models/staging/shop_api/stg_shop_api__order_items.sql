-- One row per element of each landed order version's `items` array. An order whose `items` is
-- missing, empty or not an array has no rows here.
with

completed_loads as (

    select load_id from {{ source('shop_api', '_dlt_loads') }}
    where status = 0

),

source as (

    -- rows of completed loads only: what has been landed
    select * from {{ source('shop_api', 'orders') }}
    where _dlt_load_id in (select completed_loads.load_id from completed_loads)

),

elements as (

    select
        source.id as order_id,
        source._version as version_key,
        elements.position,
        elements.item
    from source
    {{ unnest_json_array('source.items', 'elements') }}

),

renamed as (

    select
        -- ids
        order_id,
        version_key,
        coalesce(
            case
                when {{ regexp_matches(json_member_text('item', 'line'), '^[0-9]+$') }}
                    then cast({{ json_member_text('item', 'line') }} as integer)
            end,
            cast(position as integer)
        ) as line_number,
        {{ json_member_text('item', 'sku') }} as sku,

        -- numerics
        {{ json_member_text('item', 'quantity') }} as quantity_text,
        {{ safe_decimal(json_member_text('item', 'quantity')) }} as quantity,
        {{ json_member_text('item', 'unit_price') }} as unit_price_text,
        {{ safe_decimal(json_member_text('item', 'unit_price')) }} as unit_price,

        -- booleans
        {{ json_is_object('item') }} as is_object

    from elements

)

select * from renamed
