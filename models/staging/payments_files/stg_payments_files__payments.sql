with

source as (

    select * from {{ source('payments_files', 'payments') }}

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
