with

completed_loads as (

    select load_id from {{ source('app_db', '_dlt_loads') }}
    where status = 0

),

source as (

    -- rows of completed loads only: what has been landed
    select * from {{ source('app_db', 'products') }}
    where _dlt_load_id in (select completed_loads.load_id from completed_loads)

),

renamed as (

    select
        -- ids
        sku,

        -- strings
        name as product_name,
        category,
        currency,

        -- numerics
        list_price as list_price_text,
        {{ safe_decimal('list_price') }} as list_price,

        -- booleans
        {{ safe_boolean('active') }} as is_active,

        -- timestamps
        _version_at as updated_at,

        -- versions
        {{ version_columns() }}

    from source

)

select * from renamed
