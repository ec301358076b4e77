{#- Contract 2.2, customers. Inputs: stg_app_db__customers + is_known_country. -#}
{% macro customer_rules() -%}
    {{ return({
        'invalid_email': 'not ' ~ regexp_matches('email', email_pattern()),
        'unknown_country': 'not is_known_country',
        'updated_before_created': 'coalesce(updated_at < created_at, false)',
    }) }}
{%- endmacro %}
