{#- The rule set's one evaluation: a dict {reason code: condition that is true when the rule is broken}
    becomes the sorted, comma-separated list of broken codes ('' when none). Each condition must be
    false, not NULL, when its inputs are missing and the rule says nothing about them. -#}
{% macro failed_rules(rules) -%}
    coalesce(concat_ws(','
    {%- for code in rules | sort %},
        case when {{ rules[code] }} then '{{ code }}' end
    {%- endfor %}
    ), '')
{%- endmacro %}

{#- Shapes the contract's rules refer to, written once. -#}
{% macro email_pattern() -%}
    ^[^@\s]+@[^@\s]+\.[^@\s]+$
{%- endmacro %}

{#- "a decimal with at most 2 places", on the text as it arrived (unsigned: the sign rules differ). -#}
{% macro money_pattern() -%}
    ^[0-9]+([.][0-9]{1,2})?$
{%- endmacro %}
