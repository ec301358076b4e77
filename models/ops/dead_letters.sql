-- Every record a loader could not land, from all sources, whole: the contract's `ops.dead_letters`.
-- Each loader writes its own `raw_<source>.dead_letters` in the same load package as the rows around
-- it, so a dead letter commits exactly when its neighbours do; this view is the one place to read them.
{%- set sources = var('elt_sources') %}  {#- the registry of sources, dbt_project.yml #}

with

{% for name in sources %}
{{ name }} as (

    select
        dead_letter_id,
        source,
        resource,
        location,
        raw_text,
        error,
        dead_lettered_at,
        _delivered_at as delivered_at,
        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at
    from {{ source(name, 'dead_letters') }}

),
{% endfor %}

unioned as (

    {% for name in sources %}
    select * from {{ name }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from unioned
