{{
    config(
        unique_key='sku',
        post_hook=canonical_post_hooks('int_products__versions', 'sku'),
    )
}}

with

versions as (

    select * from {{ ref('int_products__versions') }}
    {%- if is_incremental() %}
    -- only products re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_products__versions') }})
    {%- endif %}

),

last_good as (

    select * from versions
    where is_last_good

),

final as (

    select
        sku,
        product_name,
        category,
        cast(list_price as numeric(18, 2)) as list_price,
        currency,
        is_active,
        updated_at
    from last_good

)

select * from final
