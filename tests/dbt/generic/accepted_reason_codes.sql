{#- Every reason code of a column of comma-separated codes (`failed_rules`) is one of `codes`; '' (no rule
    broken) passes. One pass over the table, nothing unnested: the list as a whole must read
    code(,code)*. Accepts dbt's `where` config, like every generic test of the project. -#}
{% test accepted_reason_codes(model, column_name, codes) %}

{%- set code = '(' ~ (codes | sort | join('|')) ~ ')' -%}

select {{ column_name }}
from {{ model }}
where
    {{ column_name }} <> ''
    and not {{ regexp_matches(column_name, '^' ~ code ~ '(,' ~ code ~ ')*$') }}

{% endtest %}
