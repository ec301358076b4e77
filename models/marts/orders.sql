{{
    config(
        unique_key='order_id',
        post_hook=canonical_post_hooks('int_orders__versions', 'order_id'),
    )
}}

with

last_good as (

    {{ last_good_versions(ref('int_orders__versions')) }}

),

final as (

    select
        cast(order_id as varchar) as order_id,
        cast(customer_id as varchar) as customer_id,
        cast(status as varchar) as status,
        cast(currency as varchar) as currency,
        cast(shipping_country as varchar) as shipping_country,
        cast(item_count as bigint) as item_count,
        cast(order_total as numeric(18, 2)) as order_total,
        cast(created_at as timestamp with time zone) as created_at,
        cast(updated_at as timestamp with time zone) as updated_at
    from last_good

)

select * from final
