{#- Post-hook of daily_revenue: a (date, currency) whose last succeeded or refunded payment left it has
    no row (contract 2.1). delete+insert replaced only the dates that still have rows. -#}
{% macro delete_emptied_revenue_dates() -%}
    {%- if is_incremental() -%}
    {%- set touched_dates -%}
        select {{ utc_date('paid_at') }}
        from {{ ref('int_payments__versions') }}
        where batch_id in ({{ unconsumed_batches('int_payments__versions') }}) and paid_at is not null
    {%- endset -%}
    delete from {{ this }}
    where
        revenue_date in ({{ touched_dates }})
        and cast(revenue_date as varchar) || '|' || currency not in (
            select cast({{ utc_date('paid_at') }} as varchar) || '|' || currency
            from {{ ref('int_payments__versions') }}
            where
                is_last_good
                and status in ('succeeded', 'refunded')
                and currency is not null
                and {{ utc_date('paid_at') }} in ({{ touched_dates }})
        )
    {%- endif -%}
{%- endmacro %}

