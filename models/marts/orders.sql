{{
    config(
        unique_key='order_id',
        post_hook=canonical_post_hooks('int_orders__versions', 'order_id'),
    )
}}

with

versions as (

    select * from {{ ref('int_orders__versions') }}
    {%- if is_incremental() %}
    -- only orders re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_orders__versions') }})
    {%- endif %}

),

last_good as (

    select * from versions
    where is_last_good

),

final as (

    select
        order_id,
        customer_id,
        status,
        currency,
        shipping_country,
        cast(item_count as bigint) as item_count,
        cast(order_total as numeric(18, 2)) as order_total,
        created_at,
        updated_at
    from last_good

)

select * from final
