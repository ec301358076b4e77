{#- Post-hook of daily_revenue: a (date, currency) whose last succeeded or refunded payment left it has
    no row (contract 2.1). delete+insert only replaced the dates that still have rows. -#}
{% macro delete_emptied_revenue_dates() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where
        revenue_date in (
            select {{ utc_date('paid_at') }}
            from {{ ref('int_payments__versions') }}
            where {{ evaluated_since_watermark() }} and paid_at is not null
        )
        and cast(revenue_date as varchar) || '|' || currency not in (
            select cast({{ utc_date('paid_at') }} as varchar) || '|' || currency
            from {{ ref('payments') }}
            where status in ('succeeded', 'refunded') and currency is not null
        )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- A where-clause condition: the date is one the incremental run must rebuild (always true on a full build). -#}
{% macro touched_dates_only(date_expression, touched_dates) -%}
    {%- if is_incremental() -%}
        {{ date_expression }} in ({{ touched_dates }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
