with

completed_loads as (

    select load_id from {{ source('payments_files', '_dlt_loads') }}
    where status = 0

),

source as (

    -- rows of completed loads only: what has been landed
    select * from {{ source('payments_files', 'payments') }}
    where _dlt_load_id in (select completed_loads.load_id from completed_loads)

),

renamed as (

    select
        -- ids
        payment_id,
        order_id,

        -- strings
        currency,
        method,
        status,
        _source_file as source_file,

        -- numerics
        amount as amount_text,
        {{ safe_decimal('amount') }} as amount,

        -- timestamps
        {{ safe_timestamp('paid_at') }} as paid_at,
        _version_at as updated_at,

        -- versions
        {{ version_columns() }}

    from source

)

select * from renamed
