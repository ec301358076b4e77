with

source as (

    select * from {{ source('app_db', 'customers') }}

),

renamed as (

    select
        -- ids
        id as customer_id,

        -- strings
        email,
        full_name,
        country as country_code,

        -- booleans
        deleted_at is not null as is_deleted,

        -- timestamps
        {{ safe_timestamp('created_at') }} as created_at,
        _version_at as updated_at,

        -- versions
        {{ version_columns() }}

    from source

)

select * from renamed
