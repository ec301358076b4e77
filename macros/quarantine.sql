{#- The body of a quarantine model: the other output of the same evaluation the canonical model reads.

    Every version that breaks a rule has a row keyed by (natural key, version_key). The key's latest
    version, when it breaks a rule, is the one open row (`is_resolved = false`); older failing versions
    are kept resolved (superseded). On an incremental run, a row of an affected key whose version passes
    now (a late dimension arrived) is kept as history, resolved. delete+insert on the natural key
    replaces all rows of the affected keys at once. -#}
{% macro quarantine_rows(upstream, key) -%}
with

evaluated as (

    select * from {{ upstream }}
    where {{ evaluated_since_watermark() }}

),

failing as (

    select
        {{ key }},
        version_key,
        version_at,
        failed_rules,
        record,
        loaded_at,
        evaluated_at,
        not is_latest as is_resolved
    from evaluated
    where failed_rules <> ''

),

{%- if is_incremental() %}

previous as (

    select * from {{ this }}
    where {{ key }} in (select {{ key }} from evaluated)

),
{%- endif %}

still_failing as (

    select
        failing.{{ key }},
        failing.version_key,
        failing.version_at,
        failing.failed_rules,
        failing.record,
        failing.loaded_at,
        {%- if is_incremental() %}
        coalesce(previous.first_seen_at, failing.evaluated_at) as first_seen_at,
        {%- else %}
        failing.evaluated_at as first_seen_at,
        {%- endif %}
        failing.evaluated_at as last_seen_at,
        failing.is_resolved,
        case
            {%- if is_incremental() %}
            when failing.is_resolved then coalesce(previous.resolved_at, failing.evaluated_at)
            {%- else %}
            when failing.is_resolved then failing.evaluated_at
            {%- endif %}
        end as resolved_at
    from failing
    {%- if is_incremental() %}
    left join previous
        on
            failing.{{ key }} = previous.{{ key }}
            and failing.version_key = previous.version_key
    {%- endif %}

),

final as (

    select * from still_failing
    {%- if is_incremental() %}
    union all
    select
        previous.{{ key }},
        previous.version_key,
        previous.version_at,
        previous.failed_rules,
        previous.record,
        previous.loaded_at,
        previous.first_seen_at,
        previous.last_seen_at,
        true as is_resolved,
        coalesce(previous.resolved_at, {{ evaluation_time() }}) as resolved_at
    from previous
    where not exists (
        select 1
        from failing
        where
            failing.{{ key }} = previous.{{ key }}
            and failing.version_key = previous.version_key
    )
    {%- endif %}

)

select
    cast({{ key }} as varchar) as {{ key }},
    cast(version_key as varchar) as version_key,
    cast(version_at as varchar) as version_at,
    cast(failed_rules as varchar) as failed_rules,
    cast(record as varchar) as record,
    cast(loaded_at as timestamp with time zone) as loaded_at,
    cast(first_seen_at as timestamp with time zone) as first_seen_at,
    cast(last_seen_at as timestamp with time zone) as last_seen_at,
    is_resolved,
    cast(resolved_at as timestamp with time zone) as resolved_at
from final
{%- endmacro %}
