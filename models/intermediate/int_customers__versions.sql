{{
    config(
        unique_key='customer_id',
        post_hook=evaluation_post_hooks(loads_of='app_db'),
        indexes=[{'columns': ['customer_id']}, {'columns': ['batch_id']}],
    )
}}

{%- set rules = customer_rules() %}
{%- set inputs = rule_inputs(rules | tojson, {'countries': 'country_code'}) %}
{#- Every version is judged again after a change of the rules or the seeds. -#}
{%- set evaluate_all = not is_incremental() or inputs.changed %}

with

-- Import CTEs: the seeds. The staging views and the models this one judges against are read where
-- they are filtered instead (by load id, batch id or key, literals resolved when the model renders):
-- PostgreSQL pushes such a filter through a view or into a table read in place and answers it from an
-- index, but computes a CTE read more than once whole first.
countries as (

    select country_code from {{ ref('countries') }}

),

{%- if not evaluate_all %}

affected_keys as (

    -- customers with a version in a load this model has not consumed, and the lookback's
    select customer_id from {{ ref('stg_app_db__customers') }}
    where load_id in ({{ unconsumed_loads('app_db') }})
    {{ lookback_keys(ref('stg_app_db__customers'), 'customer_id', 'app_db') }}

),
{%- endif %}

versions as (

    -- every version of each affected customer
    select * from {{ ref('stg_app_db__customers') }}
    {%- if not evaluate_all %}
    where customer_id in (select affected_keys.customer_id from affected_keys)
    {%- endif %}

),

checked as (

    select
        versions.*,
        countries.country_code is not null as is_known_country
    from versions
    left join countries
        on versions.country_code = countries.country_code

),

final as (

    {{ verdicts('checked', rules, 'customer_id', inputs) }}

)

select * from final
