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

evaluated as (

    select
        *,
        {{ failed_rules(product_rules()) }} as failed_rules
    from checked

),

final as (

    select
        *,
        {{ verdict_columns('sku') }}
    from evaluated

)

select * from final
