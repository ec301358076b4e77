-- Contract 2.2 "nothing is lost": every key's latest landed version is either the canonical version
-- (it passes) or the open quarantine row (it fails). Returns the keys for which neither holds.
-- Two anti-joins (`not exists`), never `not in (subquery)`: PostgreSQL runs the latter, at this size, as
-- a SubPlan re-read for every row.
{#- Every entity of the registry (`elt_entities` in dbt_project.yml). In a build, the keys it wrote to the
    entity's intermediate, canonical or quarantine table; whole with --full-refresh or elt_tests: all
    (macros/test_scope.sql). The canonical and quarantine tables are looked up whole. -#}
{% for canonical, entity in var('elt_entities').items() %}
{%- set versions, quarantined, key = 'int_' ~ canonical ~ '__versions', 'quarantined_' ~ canonical, entity.key %}
{%- set written = written_versions(canonical, 'latest') %}
select
    '{{ canonical }}' as entity,
    latest.{{ key }} as natural_key
from {{ ref(versions) }} as latest
where
    latest.is_latest
    and latest.failed_rules = ''
    {%- if written %}
    and {{ written }}
    {%- endif %}
    and not exists (
        select 1 from {{ ref(canonical) }} as canonical
        where canonical.{{ key }} = latest.{{ key }}
    )
union all
select
    '{{ canonical }}' as entity,
    latest.{{ key }} as natural_key
from {{ ref(versions) }} as latest
where
    latest.is_latest
    and latest.failed_rules <> ''
    {%- if written %}
    and {{ written }}
    {%- endif %}
    and not exists (
        select 1 from {{ ref(quarantined) }} as quarantined
        where
            not quarantined.is_resolved
            and quarantined.{{ key }} = latest.{{ key }}
            and quarantined.version_key = latest.version_key
    )
{% if not loop.last %}union all{% endif %}
{% endfor %}
