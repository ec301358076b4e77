{#- Every target uses the contract's schema names as they are (raw_*, staging, analytics, quarantine, ops),
    not dbt's default "<target schema>_<custom schema>". -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
