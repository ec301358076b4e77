{{
    config(
        unique_key='sku',
        post_hook=evaluation_post_hooks(loads_of='app_db'),
        indexes=[{'columns': ['sku']}, {'columns': ['batch_id']}],
    )
}}

{%- set rules = product_rules() %}
{%- set inputs = rule_inputs(rules | tojson, {'currencies': 'currency_code'}) %}
{#- Every version is judged again after a change of the rules or the seeds. -#}
{%- set evaluate_all = not is_incremental() or inputs.changed %}

with

-- Import CTEs: the seeds. The staging views and the models this one judges against are read where
-- they are filtered instead (by load id, batch id or key, literals resolved when the model renders):
-- PostgreSQL pushes such a filter through a view or into a table read in place and answers it from an
-- index, but computes a CTE read more than once whole first.
currencies as (

    select currency_code from {{ ref('currencies') }}

),

{%- if not evaluate_all %}

affected_keys as (

    -- products with a version in a load this model has not consumed, and the lookback's
    select sku from {{ ref('stg_app_db__products') }}
    where load_id in ({{ unconsumed_loads('app_db') }})
    {{ lookback_keys(ref('stg_app_db__products'), 'sku', 'app_db') }}

),
{%- endif %}

versions as (

    -- every version of each affected product
    select * from {{ ref('stg_app_db__products') }}
    {%- if not evaluate_all %}
    where sku in (select affected_keys.sku from affected_keys)
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

    {{ verdicts('checked', rules, 'sku', inputs) }}

)

select * from final
