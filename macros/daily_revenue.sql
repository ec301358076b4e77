{#- Post-hook of daily_revenue: a (date, currency) whose last succeeded or refunded payment left it has
    no row (contract 2.1). delete+insert replaced only the dates that still have rows. -#}
{% macro delete_emptied_revenue_dates() -%}
    {%- if is_incremental() -%}
    {%- set touched_dates -%}
        select {{ utc_date('paid_at') }}
        from {{ ref('int_payments__versions') }}
        where batch_id in ({{ unconsumed_batches('int_payments__versions') }}) and paid_at is not null
    {%- endset -%}
    {%- set emptied -%}
        (
            emptied.revenue_date in ({{ touched_dates }})
            {%- if backfill_window() %}
            or {{ in_backfill_window('emptied.revenue_date') }}
            {%- endif %}
        )
        and not exists (
            select 1
            from {{ ref('int_payments__versions') }} as kept
            where
                kept.is_last_good
                and kept.status in ('succeeded', 'refunded')
                and kept.currency = emptied.currency
                and {{ utc_date('kept.paid_at') }} = emptied.revenue_date
        )
    {%- endset -%}
    {{ delete_where(this, 'emptied', emptied) }}
    {%- endif -%}
{%- endmacro %}


{#- The UTC date window `--vars '{backfill_start: …, backfill_end: …}'` asks daily_revenue to rebuild, as
    [start, end] ISO date strings; none when not asked. Both or neither, start <= end, or the build stops. -#}
{% macro backfill_window() -%}
    {%- set start, end = var('backfill_start', none), var('backfill_end', none) -%}
    {%- if start is none and end is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start, end = (start | string), (end | string) -%}
    {%- set iso = modules.re.compile('^[0-9]{4}-[0-9]{2}-[0-9]{2}$') -%}
    {%- if start == 'None' or end == 'None' or not iso.match(start) or not iso.match(end) or start > end -%}
        {{ exceptions.raise_compiler_error(
            "backfill_start and backfill_end: give both, as UTC dates YYYY-MM-DD, start <= end (got "
            ~ start ~ ", " ~ end ~ ")"
        ) }}
    {%- endif -%}
    {{ return([start, end]) }}
{%- endmacro %}

{% macro in_backfill_window(date_expression) -%}
    {%- set window = backfill_window() -%}
    {{ date_expression }} between cast('{{ window[0] }}' as date) and cast('{{ window[1] }}' as date)
{%- endmacro %}
