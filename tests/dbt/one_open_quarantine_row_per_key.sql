-- Contract 2.2: at most one open quarantine row per key, in every quarantine table.
{#- Every entity of the registry (`elt_entities` in dbt_project.yml). In a build, the keys it wrote to the
    quarantine table; whole with --full-refresh or elt_tests: all (macros/test_scope.sql). -#}
{% for name, entity in var('elt_entities').items() %}
{%- set model, key = 'quarantined_' ~ name, entity.key %}
select
    '{{ model }}' as quarantine_table,
    quarantined.{{ key }} as natural_key
from {{ written_rows(model) }} as quarantined
where not quarantined.is_resolved
group by quarantined.{{ key }}
having count(*) > 1
{% if not loop.last %}union all{% endif %}
{% endfor %}
