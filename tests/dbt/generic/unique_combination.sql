{#- A table's compound key is unique (dbt_utils' test of the same name, which the Hub would bring). -#}
{% test unique_combination(model, columns) %}

select {{ columns | join(', ') }}
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
