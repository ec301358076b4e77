{{
    config(
        unique_key='customer_id',
        post_hook=canonical_post_hooks('int_customers__versions', 'customer_id'),
    )
}}

with

last_good as (

    {{ last_good_versions(ref('int_customers__versions')) }}

),

final as (

    select
        cast(customer_id as varchar) as customer_id,
        cast(email as varchar) as email,
        cast(full_name as varchar) as full_name,
        cast(country_code as varchar) as country_code,
        cast(created_at as timestamp with time zone) as created_at,
        cast(updated_at as timestamp with time zone) as updated_at,
        is_deleted
    from last_good

)

select * from final
