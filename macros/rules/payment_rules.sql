{#- Contract 2.2, payments. Inputs: stg_payments_files__payments + is_known_currency, and the canonical
    order of this run (order_exists, order_currency). -#}
{% macro payment_rules() -%}
    {{ return({
        'bad_amount': '(not ' ~ regexp_matches('amount_text', money_pattern()) ~ ' or amount <= 0)',
        'unknown_currency': 'not is_known_currency',
        'bad_timestamp': '(paid_at is null or updated_at is null)',
        'invalid_status': "coalesce(status not in ('succeeded', 'failed', 'refunded'), true)",
        'invalid_method': "coalesce(method not in ('card', 'bank_transfer', 'wallet'), true)",
        'unknown_order': 'not order_exists',
        'currency_mismatch': '(order_exists and order_currency is distinct from currency)',
    }) }}
{%- endmacro %}
