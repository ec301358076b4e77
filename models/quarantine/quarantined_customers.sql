{{
    config(
        alias='customers',
        unique_key='customer_id',
        post_hook=["{{ record_consumed('int_customers__versions') }}"],
    )
}}

with

evaluated as (

    select * from {{ ref('int_customers__versions') }}
    {%- if is_incremental() %}
    -- only customers re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_customers__versions') }})
    {%- endif %}

),

{%- if is_incremental() %}

previous as (

    select * from {{ this }}
    where customer_id in (select evaluated.customer_id from evaluated)

),
{%- endif %}

final as (

    {{ quarantine_rows('evaluated', 'previous' if is_incremental() else none, 'customer_id') }}

)

select * from final
