{#- Contract 2.2, orders. Inputs: stg_shop_api__orders + is_known_currency, is_known_country,
    is_known_customer (canonical customers of this run) and the item summary (item_rows, bad_item_rows,
    distinct_line_numbers). -#}
{% macro order_rules() -%}
    {{ return({
        'unknown_currency': 'not is_known_currency',
        'invalid_status': "coalesce(status not in ('placed', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'), true)",
        'unknown_customer': 'not is_known_customer',
        'unknown_country': 'not is_known_country',
        'no_items': 'item_rows = 0',
        'bad_item': '(bad_item_rows > 0 or distinct_line_numbers < item_rows)',
        'updated_before_created': 'coalesce(updated_at < created_at, false)',
        'bad_timestamp': '(created_at is null or updated_at is null)',
    }) }}
{%- endmacro %}

{#- One element of `items` is bad when it has no sku, its quantity is not a positive integer, or its
    unit_price is not a decimal >= 0 with at most 2 places. Inputs: order_item_columns. A repeated
    line number also makes the items bad: `order_items` could not key them (our addition, see README). -#}
{% macro bad_order_item() -%}
    (
        not is_object
        or coalesce(trim(sku), '') = ''
        or quantity is null
        or quantity <= 0
        or quantity <> floor(quantity)
        or not {{ regexp_matches('unit_price_text', money_pattern()) }}
    )
{%- endmacro %}
