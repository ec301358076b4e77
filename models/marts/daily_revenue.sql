{#- Rebuilt per UTC date: every date that any re-evaluated payment touches — the date of each of its
    versions, so both the date it moved to and the date it left — however old. A late file therefore
    corrects the day it settles, not only a trailing window.

    It aggregates the canonical payment versions where they are decided, `int_payments__versions`
    (`is_last_good`: exactly the rows of `analytics.payments`), so a selection that builds it without
    `payments` still gives the same figures.

    A date window can be rebuilt on purpose, besides what changed (a hand fix, a suspicion):
    `dbt build --select daily_revenue --vars '{backfill_start: 2024-03-01, backfill_end: 2024-03-07}'`
    (UTC dates, both included). Dates in the window that have no payment left lose their rows. -#}
{{
    config(
        unique_key='revenue_date',
        post_hook=[
            "{{ delete_emptied_revenue_dates() }}",
            "{{ record_consumed('int_payments__versions') }}",
        ],
    )
}}

with

{%- if is_incremental() %}

touched_dates as (

    select distinct {{ utc_date('paid_at') }} as revenue_date
    from {{ ref('int_payments__versions') }}
    where
        batch_id in ({{ unconsumed_batches('int_payments__versions') }})
        and paid_at is not null
    {%- if backfill_window() %}
    union
    -- the dates of the window asked for (backfill_start, backfill_end)
    select distinct {{ utc_date('paid_at') }} as revenue_date
    from {{ ref('int_payments__versions') }}
    where {{ in_backfill_window(utc_date('paid_at')) }}
    {%- endif %}

),
{%- endif %}

payments as (

    select * from {{ ref('int_payments__versions') }}
    where
        is_last_good
        and status in ('succeeded', 'refunded')

),

final as (

    select
        {{ utc_date('paid_at') }} as revenue_date,
        currency,
        cast(sum(case when status = 'succeeded' then 1 else 0 end) as bigint) as payments_count,
        cast(sum(case when status = 'succeeded' then amount else 0 end) as numeric(18, 2)) as gross_amount,
        cast(sum(case when status = 'refunded' then amount else 0 end) as numeric(18, 2)) as refunded_amount,
        cast(
            sum(case when status = 'succeeded' then amount else 0 end)
            - sum(case when status = 'refunded' then amount else 0 end)
            as numeric(18, 2)
        ) as net_amount
    from payments
    {%- if is_incremental() %}
    -- the touched dates only (payments is read once: the planner applies this where it reads the table)
    where {{ utc_date('paid_at') }} in (select touched_dates.revenue_date from touched_dates)
    {%- endif %}
    group by {{ utc_date('paid_at') }}, currency

)

select * from final
