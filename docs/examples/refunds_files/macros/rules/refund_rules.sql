{#- Refunds. Inputs: stg_refunds_files__refunds + is_known_currency. -#}
{% macro refund_rules() -%}
    {{ return({
        'bad_amount': '(not ' ~ regexp_matches('amount_text', money_pattern()) ~ ' or amount <= 0)',
        'unknown_currency': 'not is_known_currency',
        'bad_timestamp': '(refunded_at is null or updated_at is null)',
    }) }}
{%- endmacro %}
