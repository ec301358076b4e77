{#- One SELECT, no CTE: PostgreSQL inlines a view without a WITH into its caller's query, so an incremental
    model's filter on the key or the load id reaches the raw table's indexes (it never pulls up a
    subquery that has a WITH, and would compute this view for every raw row first). -#}

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

from {{ source('payments_files', 'payments') }}

-- rows of completed loads only: what has been landed
where
    _dlt_load_id in (
        -- unaliased: `dbt build --empty` (unit tests) renders a source as an aliased subquery
        {{ completed_loads('payments_files') }}  -- noqa: RF02
    )
