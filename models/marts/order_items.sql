{#- The items of the order version that is canonical in `orders`: replaced whole, per order, whenever
    that order is re-evaluated. -#}
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

canonical_versions as (

    select
        order_id,
        version_key
    from versions
    where is_last_good

),

items as (

    select * from {{ ref('stg_shop_api__order_items') }}
    {%- if is_incremental() %}
    where order_id in (select canonical_versions.order_id from canonical_versions)
    {%- endif %}

),

final as (

    select
        items.order_id,
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
