-- Contract 2.2: at most one open quarantine row per key, in every quarantine table.
{%- set tables = {
    'quarantined_customers': 'customer_id',
    'quarantined_products': 'sku',
    'quarantined_orders': 'order_id',
    'quarantined_payments': 'payment_id',
} %}

{% for model, key in tables.items() %}
select
    '{{ model }}' as quarantine_table,
    {{ key }} as natural_key
from {{ ref(model) }}
where not is_resolved
group by {{ key }}
having count(*) > 1
{% if not loop.last %}union all{% endif %}
{% endfor %}
