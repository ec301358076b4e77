{{
    config(
        unique_key='payment_id',
        post_hook=canonical_post_hooks('int_payments__versions', 'payment_id'),
    )
}}

with

last_good as (

    {{ last_good_versions(ref('int_payments__versions')) }}

),

final as (

    select
        cast(payment_id as varchar) as payment_id,
        cast(order_id as varchar) as order_id,
        cast(amount as numeric(18, 2)) as amount,
        cast(currency as varchar) as currency,
        cast(method as varchar) as method,
        cast(status as varchar) as status,
        cast(paid_at as timestamp with time zone) as paid_at,
        cast(updated_at as timestamp with time zone) as updated_at
    from last_good

)

select * from final
