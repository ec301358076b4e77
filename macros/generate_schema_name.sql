{#- Every target uses the contract's schema names as they are (raw_*, staging, analytics, quarantine, ops),
    not dbt's default "<target schema>_<custom schema>".

    `elt replay --dry-run` sets the var `replay_preview_schema`: the seeds and the intermediate models
    (where the rules are evaluated) are then built, from scratch, into that scratch schema instead, so
    the verdicts under the pending rules and seeds can be compared with the current ones. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set preview = var('replay_preview_schema', none) -%}
    {%- if preview and (node.resource_type == 'seed' or 'intermediate' in node.fqn) -%}
        {{ preview }}
    {%- else -%}
        {{ (custom_schema_name or target.schema) | trim }}
    {%- endif -%}
{%- endmacro %}
