with

source as (

    select * from {{ source('app_db', 'products') }}

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
