{{
    config(
        unique_key='refund_id',
        post_hook=canonical_post_hooks('int_refunds__versions', 'refund_id'),
    )
}}

with

versions as (

    select * from {{ ref('int_refunds__versions') }}
    {%- if is_incremental() %}
    -- only refunds re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_refunds__versions') }})
    {%- endif %}

),

last_good as (

    select * from versions
    where is_last_good

),

final as (

    select
        refund_id,
        payment_id,
        cast(amount as numeric(18, 2)) as amount,
        currency,
        reason,
        refunded_at,
        updated_at
    from last_good

)

select * from final
