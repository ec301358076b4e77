{{
    config(
        alias='orders',
        unique_key='order_id',
        post_hook=["{{ record_consumed('int_orders__versions') }}"],
    )
}}

with

evaluated as (

    select * from {{ ref('int_orders__versions') }}
    {%- if is_incremental() %}
    -- only orders re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_orders__versions') }})
    {%- endif %}

),

{%- if is_incremental() %}

previous as (

    select * from {{ this }}
    where order_id in (select evaluated.order_id from evaluated)

),
{%- endif %}

final as (

    {{ quarantine_rows('evaluated', 'previous' if is_incremental() else none, 'order_id') }}

)

select * from final
