{#- One SELECT, no CTE, as every staging view (PostgreSQL inlines it into its caller). -#}

select
    -- ids
    refund_id,
    payment_id,

    -- strings
    currency,
    reason,
    _source_file as source_file,

    -- numerics
    amount as amount_text,
    {{ safe_decimal('amount') }} as amount,

    -- timestamps
    {{ safe_timestamp('refunded_at') }} as refunded_at,
    _version_at as updated_at,

    -- versions
    {{ version_columns() }}

from {{ source('refunds_files', 'refunds') }}

-- rows of completed loads only: what has been landed
where
    _dlt_load_id in (
        {{ completed_loads('refunds_files') }}  -- noqa: RF02
    )
