{{ config(unique_key='order_id') }}

{#- An order waiting only for its customer is released on the first run after the customer becomes
    canonical, although the order itself did not change: re-evaluate the orders quarantined for
    `unknown_customer` whose customer was (re-)evaluated since this model's last evaluation. -#}
{% set released_keys %}
    select waiting.order_id
    from {{ this }} as waiting
    where waiting.failed_rules like '%unknown_customer%'
        and waiting.customer_id in (
            select customer_id
            from {{ ref('int_customers__versions') }}
            where evaluated_at > (select max(evaluated_at) from {{ this }})
        )
{% endset %}

with

versions as (

    {{ affected_versions(ref('stg_shop_api__orders'), 'order_id', released_keys) }}

),

items as (

    select * from {{ ref('stg_shop_api__order_items') }}
    where order_id in (select versions.order_id from versions)

),

currencies as (

    select currency_code from {{ ref('currencies') }}

),

countries as (

    select country_code from {{ ref('countries') }}

),

customers as (

    select customer_id from {{ ref('customers') }}

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
        customers.customer_id is not null as is_known_customer
    from versions
    left join item_summary
        on
            versions.order_id = item_summary.order_id
            and versions.version_key = item_summary.version_key
    left join currencies
        on versions.currency = currencies.currency_code
    left join countries
        on versions.shipping_country = countries.country_code
    left join customers
        on versions.customer_id = customers.customer_id

),

final as (

    {{ verdicts('checked', order_rules(), 'order_id') }}

)

select * from final
