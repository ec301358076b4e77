{#- The items of the order version that is canonical in `orders`: replaced whole, per order, whenever
    that version changes. -#}
{{
    config(
        unique_key='order_id',
        post_hook=canonical_post_hooks('int_orders__versions', 'order_id'),
    )
}}

with

canonical_versions as (

    select
        order_id,
        version_key
    from ({{ last_good_versions(ref('int_orders__versions')) }}) as last_good

),

items as (

    select * from {{ ref('stg_shop_api__order_items') }}
    where order_id in (select canonical_versions.order_id from canonical_versions)

),

final as (

    select
        cast(items.order_id as varchar) as order_id,
        cast(items.line_number as integer) as line_number,
        cast(items.sku as varchar) as sku,
        cast(items.quantity as integer) as quantity,
        cast(items.unit_price as numeric(18, 2)) as unit_price,
        cast(items.quantity * items.unit_price as numeric(18, 2)) as line_amount
    from items
    inner join canonical_versions
        on
            items.order_id = canonical_versions.order_id
            and items.version_key = canonical_versions.version_key

)

select * from final
