with

completed_loads as (

    select load_id from {{ source('app_db', '_dlt_loads') }}
    where status = 0

),

source as (

    -- rows of completed loads only: what has been landed
    select * from {{ source('app_db', 'customers') }}
    where _dlt_load_id in (select completed_loads.load_id from completed_loads)

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
