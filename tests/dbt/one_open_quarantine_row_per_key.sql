-- Contract 2.2: at most one open quarantine row per key, in every quarantine table.
{#- Every entity of the registry (`elt_entities` in dbt_project.yml). -#}
{% for name, entity in var('elt_entities').items() %}
{%- set model, key = 'quarantined_' ~ name, entity.key %}
select
    '{{ model }}' as quarantine_table,
    {{ key }} as natural_key
from {{ ref(model) }}
where not is_resolved
group by {{ key }}
having count(*) > 1
{% if not loop.last %}union all{% endif %}
{% endfor %}
