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
        version_key,
        items_json
    from versions
    where is_last_good

),

items as (

    -- the items of the canonical versions only
    select
        {{ order_item_columns('canonical_versions') }}
    from canonical_versions
    {{ unnest_json_array('canonical_versions.items_json', 'elements') }}

),

final as (

    select
        items.order_id,
        cast(items.line_number as integer) as line_number,
        cast(items.sku as {{ type_text() }}) as sku,
        cast(items.quantity as integer) as quantity,
        cast(items.unit_price as numeric(18, 2)) as unit_price,
        cast(items.quantity * items.unit_price as numeric(18, 2)) as line_amount
    from items

)

select * from final
