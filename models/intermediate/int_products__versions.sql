{{ config(unique_key='sku') }}

with

versions as (

    {{ affected_versions(ref('stg_app_db__products'), 'sku') }}

),

currencies as (

    select currency_code from {{ ref('currencies') }}

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

    {{ verdicts('checked', product_rules(), 'sku') }}

)

select * from final
