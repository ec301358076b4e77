with

source as (

    select * from {{ source('shop_api', 'orders') }}

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
