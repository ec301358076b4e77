{#- One SELECT, no CTE: PostgreSQL inlines a view without a WITH into its caller's query, so an incremental
    model's filter on the key or the load id reaches the raw table's indexes (it never pulls up a
    subquery that has a WITH, and would compute this view for every raw row first). -#}

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

from {{ source('app_db', 'products') }}

-- rows of completed loads only: what has been landed
where
    _dlt_load_id in (
        -- unaliased: `dbt build --empty` (unit tests) renders a source as an aliased subquery
        {{ completed_loads('app_db') }}  -- noqa: RF02
    )
