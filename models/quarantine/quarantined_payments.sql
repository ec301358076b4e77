{{
    config(
        alias='payments',
        unique_key='payment_id',
        post_hook=["{{ record_consumed('int_payments__versions') }}"],
    )
}}

with

evaluated as (

    select * from {{ ref('int_payments__versions') }}
    {%- if is_incremental() %}
    -- only payments re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_payments__versions') }})
    {%- endif %}

),

{%- if is_incremental() %}

previous as (

    select * from {{ this }}
    where payment_id in (select evaluated.payment_id from evaluated)

),
{%- endif %}

final as (

    {{ quarantine_rows('evaluated', 'previous' if is_incremental() else none, 'payment_id') }}

)

select * from final
