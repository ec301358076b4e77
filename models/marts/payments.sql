{{
    config(
        unique_key='payment_id',
        post_hook=canonical_post_hooks('int_payments__versions', 'payment_id'),
    )
}}

with

versions as (

    select * from {{ ref('int_payments__versions') }}
    {%- if is_incremental() %}
    -- only payments re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_payments__versions') }})
    {%- endif %}

),

last_good as (

    select * from versions
    where is_last_good

),

final as (

    select
        payment_id,
        order_id,
        cast(amount as numeric(18, 2)) as amount,
        currency,
        method,
        status,
        paid_at,
        updated_at
    from last_good

)

select * from final
