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

renamed as (

    select
        -- ids
        id as order_id,
        customer_id,

        -- strings
        status,
        currency,
        shipping_country,
        items as items_json,

        -- timestamps
        {{ safe_timestamp('created_at') }} as created_at,
        _version_at as updated_at,

        -- versions
        {{ version_columns() }}

    from source

)

select * from renamed
