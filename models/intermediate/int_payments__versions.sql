{{
    config(
        unique_key='payment_id',
        post_hook=evaluation_post_hooks(loads_of='payments_files', judged_against=['int_orders__versions']),
        indexes=[{'columns': ['payment_id']}, {'columns': ['batch_id']}, {'columns': ['order_id']}],
    )
}}

{%- set rules = payment_rules() %}
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

landed as (

    -- payments with a version in a load this model has not consumed, and the lookback's
    select payment_id from {{ ref('stg_payments_files__payments') }}
    where load_id in ({{ unconsumed_loads('payments_files') }})
    {{ lookback_keys(ref('stg_payments_files__payments'), 'payment_id', 'payments_files') }}

),

orders_changed as (

    -- orders re-evaluated since this model last judged against them, and their canonical currency now
    select
        order_id,
        max(case when is_last_good then 1 else 0 end) = 1 as is_canonical,
        max(case when is_last_good then currency end) as canonical_currency
    from {{ ref('int_orders__versions') }}
    where batch_id in ({{ unconsumed_batches('int_orders__versions') }})
    group by order_id

),

released_or_demoted as (

    -- payments judged against an order that entered or left the canonical table, or changed its
    -- currency, since: `unknown_order` or `currency_mismatch` changes although the payment did not
    select judged.payment_id
    from {{ this }} as judged
    inner join orders_changed
        on judged.order_id = orders_changed.order_id
    where
        {{ key_in('judged.order_id', 'select changed.order_id from orders_changed as changed') }}
        and (
            judged.order_exists <> orders_changed.is_canonical
            or judged.order_currency is distinct from orders_changed.canonical_currency
        )

),

affected_keys as (

    select payment_id from landed
    union
    select payment_id from released_or_demoted

),
{%- endif %}

versions as (

    -- every version of each affected payment
    select * from {{ ref('stg_payments_files__payments') }}
    {%- if not evaluate_all %}
    where payment_id in (select affected_keys.payment_id from affected_keys)
    {%- endif %}

),

canonical_orders as (

    -- the orders canonical in this run: their version that passes (of the orders these versions name)
    select
        order_id,
        currency
    from {{ ref('int_orders__versions') }}
    {%- if evaluate_all %}
    where is_last_good
    {%- else %}
    where
        is_last_good
        and order_id in (select versions.order_id from versions)
    {%- endif %}

),

checked as (

    select
        versions.*,
        currencies.currency_code is not null as is_known_currency,
        canonical_orders.order_id is not null as order_exists,
        canonical_orders.currency as order_currency
    from versions
    left join currencies
        on versions.currency = currencies.currency_code
    left join canonical_orders
        on versions.order_id = canonical_orders.order_id

),

final as (

    {{ verdicts('checked', rules, 'payment_id', inputs) }}

)

select * from final
