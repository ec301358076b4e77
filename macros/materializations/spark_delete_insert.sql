{#- Spark without a table format (Parquet; Delta's jars are not everywhere): dbt-spark's incremental
    strategies there are `append` and `insert_overwrite`, and no statement deletes rows. The project's one
    strategy, `delete+insert` on the unique key, is added with the same meaning — the rows a run selects
    replace every row of their keys — by rewriting the table: the new rows go to a side table, the table's
    rows of every other key are appended to it, and the side table overwrites the table (Spark refuses to
    overwrite a table that the same statement reads). A run therefore writes the whole table once; what it
    saves is the evaluation (the rules, the joins), which reads only the keys that changed.

    Why not `insert_overwrite` over partitions derived from the key: a run's changed keys are spread over
    every hash partition (1 % of the orders touches all of any sensible number of them), so it would
    rewrite the table as well, with a partition column added to the canonical tables' contract.

    dbt-spark's own validation and dispatch are kept for every other strategy, called as `dbt.<macro>`: dbt
    puts an adapter's macros in its internal namespace `dbt`, not under the adapter's package name (there
    `dbt_spark` is undefined), and `dbt.` reaches them past the project's overrides of the same name. -#}

{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {%- if raw_strategy == 'delete+insert' -%}
        {{ return(raw_strategy) }}
    {%- endif -%}
    {{ return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{%- endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {%- if strategy == 'delete+insert' -%}
        {{ return(spark_replace_keys(source, target, unique_key)) }}
    {%- endif -%}
    {{ return(dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates)) }}
{%- endmacro %}

{#- Replace every row of `target` whose unique key is among `source`'s rows by `source`'s rows. Runs its
    statements at once and returns the last one (dropping the side table) for the materialization. With
    no key (none, '' or []) there is nothing to replace: `source`'s rows are appended, as `delete+insert`
    does on the other warehouses. -#}
{% macro spark_replace_keys(source, target, unique_key) -%}
    {%- set keys = ([unique_key] if unique_key is string else (unique_key or [])) | reject('equalto', '') | list -%}
    {%- if keys | length == 0 -%}
        {{ return(dbt.get_insert_into_sql(source, target)) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | list -%}
    {%- set side = spark_side_table(target) -%}
    {%- do run_query('drop table if exists ' ~ side) -%}
    {%- do run_query('create table ' ~ side ~ ' using parquet as select ' ~ columns | join(', ') ~ ' from ' ~ source) -%}
    {%- set kept -%}
        insert into {{ side }}
        select {% for column in columns %}kept.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
        from {{ target }} as kept
        left anti join {{ side }} as replaced
            on {% for key in keys %}kept.{{ key }} = replaced.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    {%- endset -%}
    {%- do run_query(kept) -%}
    {{ return(spark_overwrite_from(target, side)) }}
{%- endmacro %}

{#- `delete from relation as alias where condition`, on Spark: keep the other rows. Returns '' (a hook with
    nothing left to run). -#}
{% macro spark__delete_where(relation, alias, condition) -%}
    {%- set side = spark_side_table(relation) -%}
    {%- do run_query('drop table if exists ' ~ side) -%}
    {%- do run_query(
        'create table ' ~ side ~ ' using parquet as select * from ' ~ relation ~ ' as ' ~ alias
        ~ ' where not coalesce((' ~ condition ~ '), false)'
    ) -%}
    {%- do run_query(spark_overwrite_from(relation, side)) -%}
{%- endmacro %}

{% macro spark_side_table(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__dbt_rewrite'})) }}
{%- endmacro %}

{#- Overwrite `relation` with the rows of `side` (same columns, same order), then drop `side`; the drop is
    returned, for the caller to run. -#}
{% macro spark_overwrite_from(relation, side) -%}
    {%- do run_query('insert overwrite table ' ~ relation ~ ' select * from ' ~ side) -%}
    {{ return('drop table if exists ' ~ side) }}
{%- endmacro %}
