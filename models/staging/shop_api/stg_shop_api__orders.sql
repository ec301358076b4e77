{#- One SELECT, no CTE: PostgreSQL inlines a view without a WITH into its caller's query, so an incremental
    model's filter on the key or the load id reaches the raw table's indexes (it never pulls up a
    subquery that has a WITH, and would compute this view for every raw row first). -#}

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

from {{ source('shop_api', 'orders') }}

-- rows of completed loads only: what has been landed
where
    _dlt_load_id in (
        -- unaliased: `dbt build --empty` (unit tests) renders a source as an aliased subquery
        {{ completed_loads('shop_api') }}  -- noqa: RF02
    )
