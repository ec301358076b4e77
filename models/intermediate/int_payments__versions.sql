{{ config(unique_key='payment_id') }}

{#- `unknown_order` and `currency_mismatch` are judged against canonical orders: re-evaluate the payments
    of every order (re-)evaluated since this model's last evaluation. That releases a payment whose order
    became canonical, and demotes one whose order's currency changed under it. -#}
{% set released_keys %}
    select affected.payment_id
    from {{ this }} as affected
    where affected.order_id in (
        select order_id
        from {{ ref('int_orders__versions') }}
        where evaluated_at > (select max(evaluated_at) from {{ this }})
    )
{% endset %}

with

versions as (

    {{ affected_versions(ref('stg_payments_files__payments'), 'payment_id', released_keys) }}

),

currencies as (

    select currency_code from {{ ref('currencies') }}

),

orders as (

    select
        order_id,
        currency
    from {{ ref('orders') }}

),

checked as (

    select
        versions.*,
        currencies.currency_code is not null as is_known_currency,
        orders.order_id is not null as order_exists,
        orders.currency as order_currency
    from versions
    left join currencies
        on versions.currency = currencies.currency_code
    left join orders
        on versions.order_id = orders.order_id

),

final as (

    {{ verdicts('checked', payment_rules(), 'payment_id') }}

)

select * from final
