{{ config(unique_key='customer_id') }}

with

versions as (

    {{ affected_versions(ref('stg_app_db__customers'), 'customer_id') }}

),

countries as (

    select country_code from {{ ref('countries') }}

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

    {{ verdicts('checked', customer_rules(), 'customer_id') }}

)

select * from final
