{{
    config(
        alias='products',
        unique_key='sku',
        post_hook=["{{ record_consumed('int_products__versions') }}"],
    )
}}

with

evaluated as (

    select * from {{ ref('int_products__versions') }}
    {%- if is_incremental() %}
    -- only products re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_products__versions') }})
    {%- endif %}

),

{%- if is_incremental() %}

previous as (

    select * from {{ this }}
    where sku in (select evaluated.sku from evaluated)

),
{%- endif %}

final as (

    {{ quarantine_rows('evaluated', 'previous' if is_incremental() else none, 'sku') }}

)

select * from final
