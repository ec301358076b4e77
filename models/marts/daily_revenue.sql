{#- Rebuilt per UTC date: every date that any re-evaluated payment version touches (its new date and,
    through the older versions of the same payment, the date it moved away from), however old. A late
    file therefore corrects the day it settles, not only a trailing window. -#}
{% set touched_dates %}
    select distinct {{ utc_date('paid_at') }} as revenue_date
    from {{ ref('int_payments__versions') }}
    where {{ evaluated_since_watermark() }} and paid_at is not null
{% endset %}

{{
    config(
        unique_key='revenue_date',
        post_hook=[
            "{{ delete_emptied_revenue_dates() }}",
            "{{ save_watermark(ref('int_payments__versions')) }}",
        ],
    )
}}

with

payments as (

    select * from {{ ref('payments') }}
    where
        status in ('succeeded', 'refunded')
        and {{ touched_dates_only(utc_date('paid_at'), touched_dates) }}

),

final as (

    select
        {{ utc_date('paid_at') }} as revenue_date,
        cast(currency as varchar) as currency,
        cast(sum(case when status = 'succeeded' then 1 else 0 end) as bigint) as payments_count,
        cast(sum(case when status = 'succeeded' then amount else 0 end) as numeric(18, 2)) as gross_amount,
        cast(sum(case when status = 'refunded' then amount else 0 end) as numeric(18, 2)) as refunded_amount,
        cast(
            sum(case when status = 'succeeded' then amount else 0 end)
            - sum(case when status = 'refunded' then amount else 0 end)
            as numeric(18, 2)
        ) as net_amount
    from payments
    group by {{ utc_date('paid_at') }}, currency

)

select * from final
