{{
    config(
        unique_key='sku',
        post_hook=canonical_post_hooks('int_products__versions', 'sku'),
    )
}}

with

last_good as (

    {{ last_good_versions(ref('int_products__versions')) }}

),

final as (

    select
        cast(sku as varchar) as sku,
        cast(product_name as varchar) as product_name,
        cast(category as varchar) as category,
        cast(list_price as numeric(18, 2)) as list_price,
        cast(currency as varchar) as currency,
        is_active,
        cast(updated_at as timestamp with time zone) as updated_at
    from last_good

)

select * from final
