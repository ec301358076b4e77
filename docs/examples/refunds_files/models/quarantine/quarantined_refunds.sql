{{
    config(
        alias='refunds',
        unique_key='refund_id',
        post_hook=["{{ record_consumed('int_refunds__versions') }}"],
    )
}}

with

evaluated as (

    select * from {{ ref('int_refunds__versions') }}
    {%- if is_incremental() %}
    -- only refunds re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_refunds__versions') }})
    {%- endif %}

),

{%- if is_incremental() %}

previous as (

    select * from {{ this }}
    where refund_id in (select evaluated.refund_id from evaluated)

),
{%- endif %}

final as (

    {{ quarantine_rows('evaluated', 'previous' if is_incremental() else none, 'refund_id') }}

)

select * from final
