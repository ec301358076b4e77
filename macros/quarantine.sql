{#- The rows of a quarantine model, from `evaluated` (every version of each key re-evaluated, as the
    intermediate model judged them) and, on an incremental run, `previous` (this model's rows of those
    keys). Every version that breaks a rule has a row keyed by (natural key, version_key); the key's
    latest version, when it breaks a rule, is the one open row (`is_resolved = false`); older failing
    versions are kept resolved (superseded), and so is a row whose version passes now (a late dimension
    arrived, a rule was loosened). delete+insert on the natural key replaces all rows of a key at once. -#}
{% macro quarantine_rows(evaluated, previous, key) -%}
    {%- set incremental = previous is not none -%}
    with

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
        from {{ evaluated }}
        where failed_rules <> ''

    ),

    still_failing as (

        select
            failing.{{ key }},
            failing.version_key,
            failing.version_at,
            failing.failed_rules,
            failing.record,
            failing.loaded_at,
            {{ 'coalesce(' ~ previous ~ '.first_seen_at, failing.evaluated_at)' if incremental else 'failing.evaluated_at' }} as first_seen_at,
            failing.evaluated_at as last_seen_at,
            failing.is_resolved,
            case
                when failing.is_resolved
                    then {{ 'coalesce(' ~ previous ~ '.resolved_at, failing.evaluated_at)' if incremental else 'failing.evaluated_at' }}
            end as resolved_at
        from failing
        {%- if incremental %}
        left join {{ previous }}
            on
                failing.{{ key }} = {{ previous }}.{{ key }}
                and failing.version_key = {{ previous }}.version_key
        {%- endif %}

    ),

    {%- if incremental %}

    passing_now as (

        select
            {{ previous }}.{{ key }},
            {{ previous }}.version_key,
            {{ previous }}.version_at,
            {{ previous }}.failed_rules,
            {{ previous }}.record,
            {{ previous }}.loaded_at,
            {{ previous }}.first_seen_at,
            {{ previous }}.last_seen_at,
            true as is_resolved,
            coalesce({{ previous }}.resolved_at, {{ evaluation_time() }}) as resolved_at
        from {{ previous }}
        where not exists (
            select 1
            from failing
            where
                failing.{{ key }} = {{ previous }}.{{ key }}
                and failing.version_key = {{ previous }}.version_key
        )

    ),
    {%- endif %}

    history as (

        select * from still_failing
        {%- if incremental %}
        union all
        select * from passing_now
        {%- endif %}

    )

    select
        cast({{ key }} as {{ type_text() }}) as {{ key }},
        cast(version_key as {{ type_text() }}) as version_key,
        cast(version_at as {{ type_text() }}) as version_at,
        cast(failed_rules as {{ type_text() }}) as failed_rules,
        cast(record as {{ type_text() }}) as record,
        cast(loaded_at as {{ type_timestamptz() }}) as loaded_at,
        cast(first_seen_at as {{ type_timestamptz() }}) as first_seen_at,
        cast(last_seen_at as {{ type_timestamptz() }}) as last_seen_at,
        is_resolved,
        cast(resolved_at as {{ type_timestamptz() }}) as resolved_at
    from history
{%- endmacro %}
