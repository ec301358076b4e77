{{
    config(
        unique_key='order_id',
        post_hook=evaluation_post_hooks(loads_of='shop_api', judged_against=['int_customers__versions']),
        indexes=[{'columns': ['order_id']}, {'columns': ['batch_id']}, {'columns': ['customer_id']}],
    )
}}

{%- set rules = order_rules() %}
{%- set inputs = rule_inputs(rules | tojson ~ bad_order_item(), {'countries': 'country_code', 'currencies': 'currency_code'}) %}
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

countries as (

    select country_code from {{ ref('countries') }}

),

{%- if not evaluate_all %}

landed as (

    -- orders with a version in a load this model has not consumed, and the lookback's
    select order_id from {{ ref('stg_shop_api__orders') }}
    where load_id in ({{ unconsumed_loads('shop_api') }})
    {{ lookback_keys(ref('stg_shop_api__orders'), 'order_id', 'shop_api') }}

),

customers_changed as (

    -- customers re-evaluated since this model last judged against them, and whether they are canonical now
    select
        customer_id,
        max(case when is_last_good then 1 else 0 end) = 1 as is_canonical
    from {{ ref('int_customers__versions') }}
    where batch_id in ({{ unconsumed_batches('int_customers__versions') }})
    group by customer_id

),

released_or_demoted as (

    -- orders judged against a customer that entered or left the canonical table since:
    -- `unknown_customer` changes although the order did not
    select judged.order_id
    from {{ this }} as judged
    inner join customers_changed
        on judged.customer_id = customers_changed.customer_id
    where
        {{ key_in('judged.customer_id', 'select changed.customer_id from customers_changed as changed') }}
        and judged.is_known_customer <> customers_changed.is_canonical

),

affected_keys as (

    select order_id from landed
    union
    select order_id from released_or_demoted

),
{%- endif %}

versions as (

    -- every version of each affected order
    select * from {{ ref('stg_shop_api__orders') }}
    {%- if not evaluate_all %}
    where order_id in (select affected_keys.order_id from affected_keys)
    {%- endif %}

),

items as (

    -- the items of those versions only: the JSON of unchanged orders is never read
    select
        {{ order_item_columns('versions') }}
    from versions
    {{ unnest_json_array('versions.items_json', 'elements') }}

),

canonical_customers as (

    -- the customers canonical in this run: those with a version that passes (of those these orders name)
    select customer_id from {{ ref('int_customers__versions') }}
    {%- if evaluate_all %}
    where is_last_good
    {%- else %}
    where
        is_last_good
        and customer_id in (select versions.customer_id from versions)
    {%- endif %}

),

item_summary as (

    select
        order_id,
        version_key,
        count(*) as item_rows,
        sum(case when {{ bad_order_item() }} then 1 else 0 end) as bad_item_rows,
        count(distinct line_number) as distinct_line_numbers,
        sum(quantity) as item_count,
        sum(quantity * unit_price) as order_total
    from items
    group by order_id, version_key

),

checked as (

    select
        versions.*,
        coalesce(item_summary.item_rows, 0) as item_rows,
        coalesce(item_summary.bad_item_rows, 0) as bad_item_rows,
        coalesce(item_summary.distinct_line_numbers, 0) as distinct_line_numbers,
        item_summary.item_count,
        item_summary.order_total,
        currencies.currency_code is not null as is_known_currency,
        countries.country_code is not null as is_known_country,
        canonical_customers.customer_id is not null as is_known_customer
    from versions
    left join item_summary
        on
            versions.order_id = item_summary.order_id
            and versions.version_key = item_summary.version_key
    left join currencies
        on versions.currency = currencies.currency_code
    left join countries
        on versions.shipping_country = countries.country_code
    left join canonical_customers
        on versions.customer_id = canonical_customers.customer_id

),

final as (

    {{ verdicts('checked', rules, 'order_id', inputs) }}

)

select * from final
