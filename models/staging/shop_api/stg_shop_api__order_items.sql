-- One row per element of each landed order version's `items` array. An order whose `items` is
-- missing, empty or not an array has no rows here. The incremental models unnest only the versions
-- they re-evaluate, with the same columns (order_item_columns).
with

orders as (

    select * from {{ ref('stg_shop_api__orders') }}

),

items as (

    select
        {{ order_item_columns('orders') }}
    from orders
    {{ unnest_json_array('orders.items_json', 'elements') }}

)

select * from items
