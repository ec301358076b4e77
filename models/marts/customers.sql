{{
    config(
        unique_key='customer_id',
        post_hook=canonical_post_hooks('int_customers__versions', 'customer_id'),
    )
}}

with

versions as (

    select * from {{ ref('int_customers__versions') }}
    {%- if is_incremental() %}
    -- only customers re-evaluated since this model last ran
    where batch_id in ({{ unconsumed_batches('int_customers__versions') }})
    {%- endif %}

),

last_good as (

    select * from versions
    where is_last_good

),

final as (

    select
        customer_id,
        email,
        full_name,
        country_code,
        created_at,
        updated_at,
        is_deleted
    from last_good

)

select * from final
