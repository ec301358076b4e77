{#- Post-hook of daily_revenue: a (date, currency) whose last succeeded or refunded payment left it has
    no row (contract 2.1). delete+insert replaced only the dates that still have rows. -#}
{% macro delete_emptied_revenue_dates() -%}
    {%- if is_incremental() -%}
    {%- set touched_dates -%}
        select {{ utc_date('paid_at') }}
        from {{ ref('int_payments__versions') }}
        where batch_id in ({{ unconsumed_batches('int_payments__versions') }}) and paid_at is not null
    {%- endset -%}
    delete from {{ this }} as emptied
    where
        emptied.revenue_date in ({{ touched_dates }})
        and not exists (
            select 1
            from {{ ref('int_payments__versions') }} as kept
            where
                kept.is_last_good
                and kept.status in ('succeeded', 'refunded')
                and kept.currency = emptied.currency
                and {{ utc_date('kept.paid_at') }} = emptied.revenue_date
        )
    {%- endif -%}
{%- endmacro %}

