{#- Contract 2.2, products. Inputs: stg_app_db__products + is_known_currency. -#}
{% macro product_rules() -%}
    {{ return({
        'bad_price': '(list_price is null or list_price < 0)',
        'unknown_currency': 'not is_known_currency',
    }) }}
{%- endmacro %}
