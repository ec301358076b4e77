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


{#- The dates daily_revenue rebuilt in this invocation, as a condition on `column`: every date of a version
    of the payments in `batches` (the int_payments__versions batches it consumed in it, as
    touched_dates), and the backfill window when one was asked for; `1 = 0` when neither. Its data tests
    read these (macros/test_scope.sql). -#}
{% macro daily_revenue_written_dates(column, payments, batches) -%}
    {%- set parts = [] -%}
    {%- if batches | length > 0 -%}
        {%- do parts.append(
            column ~ ' in (select ' ~ utc_date('written_batch.paid_at') ~ ' from ' ~ payments
            ~ ' as written_batch where written_batch.batch_id in (' ~ id_literals(batches) ~ ')'
            ~ ' and written_batch.paid_at is not null)'
        ) -%}
    {%- endif -%}
    {%- if backfill_window() -%}
        {%- do parts.append(in_backfill_window(column)) -%}
    {%- endif -%}
    {{ return('(' ~ (parts | join(' or ')) ~ ')' if parts else '1 = 0') }}
{%- endmacro %}
