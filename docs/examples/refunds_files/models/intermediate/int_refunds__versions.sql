{{
    config(
        unique_key='refund_id',
        post_hook=evaluation_post_hooks(loads_of='refunds_files'),
        indexes=[{'columns': ['refund_id']}, {'columns': ['batch_id']}],
    )
}}

{%- set rules = refund_rules() %}
{%- set inputs = rule_inputs(rules | tojson, {'currencies': 'currency_code'}) %}
{#- Every version is judged again after a change of the rules or the seeds. -#}
{%- set evaluate_all = not is_incremental() or inputs.changed %}

with

-- Import CTEs: the seeds; the staging view is read where it is filtered (see int_customers__versions).
currencies as (

    select currency_code from {{ ref('currencies') }}

),

{%- if not evaluate_all %}

affected_keys as (

    -- refunds with a version in a load this model has not consumed, and the lookback's
    select refund_id from {{ ref('stg_refunds_files__refunds') }}
    where load_id in ({{ unconsumed_loads('refunds_files') }})
    {{ lookback_keys(ref('stg_refunds_files__refunds'), 'refund_id', 'refunds_files') }}

),
{%- endif %}

versions as (

    -- every version of each affected refund
    select * from {{ ref('stg_refunds_files__refunds') }}
    {%- if not evaluate_all %}
    where refund_id in (select affected_keys.refund_id from affected_keys)
    {%- endif %}

),

checked as (

    select
        versions.*,
        currencies.currency_code is not null as is_known_currency
    from versions
    left join currencies
        on versions.currency = currencies.currency_code

),

final as (

    {{ verdicts('checked', rules, 'refund_id', inputs) }}

)

select * from final
