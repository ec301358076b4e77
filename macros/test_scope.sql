{#- What a data test reads: the rows this dbt invocation wrote, or the whole table.

    Every data test of the project carries the `where` of dbt_project.yml (`data_tests: +where:`), the
    marker written_rows_marker(). When a test is compiled (once its model has run), get_where_subquery
    below turns the marker into a filter on the rows that this invocation wrote to the model it tests:

    - `int_<entity>__versions`: the keys it wrote in its batch (`batch_id` = the invocation's id); every
      version of a key carries the batch of its last write, so these are the rows of that batch, and a
      version of such a key left behind by another batch (the one thing a batch filter could not see) is
      read too;
    - a model that consumes one of them by the entity's key (`unique_key`: the entity's canonical and
      quarantine tables, order_items): the rows of the keys of the batches it consumed in this
      invocation (ops.dbt_consumed.invocation_id): the keys it replaced or deleted, and no other;
    - daily_revenue: the dates it rebuilt (daily_revenue_written_dates, macros/daily_revenue.sql);
    - a staging view and its raw table (the `elt_entities` registry): the loads the entity's intermediate
      model reads in this build: those it has not consumed yet (the view's tests run before it) and those
      it consumed in this invocation;
    - any other (the seeds, ops.dead_letters: neither incremental nor large): the whole table.

    The ids are read when the test compiles and written into it as literals; when there are none the
    filter is `1 = 0` and the test reads nothing. The singular tests (tests/dbt) filter the same way
    (written_rows, written_versions).

    Whole tables, as before: `--full-refresh`, any command but `build` (`dbt test` writes nothing: it
    tests what is there), and on demand `dbt build --vars '{elt_tests: all}'`. A plain `dbt build` by hand
    is an incremental build like `elt run`'s, so it tests what it wrote, as `elt run` does.

    What the filtered tests cannot see, by design: a row this invocation did not write (a hand edit, a bug
    of an earlier run), and in a `relationships` test a parent that left its table while children it did
    not rewrite still name it (the parent side is read whole, the child side filtered). The intermediate
    models re-evaluate the children of a parent that changed (int_orders__versions: released_or_demoted),
    so those children are rewritten, and read; the whole-table run is the check of that promise. -#}

{% macro written_rows_marker() -%}
    {{ return('rows written by this invocation') }}
{%- endmacro %}

{#- Whether the marked tests read the rows this invocation wrote (else the whole tables). `elt_tests`
    (dbt_project.yml): `auto` (a build without --full-refresh), `all` (always whole). -#}
{% macro tests_read_written_rows() -%}
    {%- set asked = var('elt_tests', 'auto') | string -%}
    {%- if asked not in ('auto', 'all') -%}
        {{ exceptions.raise_compiler_error("elt_tests: auto or all (got " ~ asked ~ ")") }}
    {%- endif -%}
    {{ return(asked == 'auto' and invocation_args_dict.get('which') == 'build' and not flags.FULL_REFRESH) }}
{%- endmacro %}

{#- dbt wraps the model of every generic test in this macro (its own reads a `where` config: kept for any
    other `where` a test is given). -#}
{% macro get_where_subquery(relation) -%}
    {%- if config.get('where') != written_rows_marker() -%}
        {{ return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) }}
    {%- endif -%}
    {%- set condition = written_rows_condition(tested_node(relation)) -%}
    {%- if condition is none -%}
        {{ return(relation) }}
    {%- endif -%}
    {{ return('(select * from ' ~ relation ~ ' as written where ' ~ condition ~ ') as dbt_subquery') }}
{%- endmacro %}

{#- For a singular test: the rows of the model `name` this invocation wrote, as a subquery to alias, or
    the model itself (whole). -#}
{% macro written_rows(name) -%}
    {%- set relation = ref(name) -%}
    {%- set condition = none -%}
    {%- if config.get('where') == written_rows_marker() -%}
        {%- set condition = written_rows_condition(graph_model(name)) -%}
    {%- endif -%}
    {%- if condition is none -%}
        {{ return(relation) }}
    {%- endif -%}
    {{ return('(select * from ' ~ relation ~ ' as written where ' ~ condition ~ ')') }}
{%- endmacro %}

{#- For a singular test: a condition on `alias` (rows of `int_<entity>__versions`) keeping the versions of
    the keys this invocation wrote to the intermediate model, the canonical table or the quarantine table
    of `entity`; none: every row. -#}
{% macro written_versions(entity, alias) -%}
    {%- if config.get('where') != written_rows_marker() or not execute or not tests_read_written_rows() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set versions, key = 'int_' ~ entity ~ '__versions', var('elt_entities')[entity].key -%}
    {%- set batches = invocation_batch(versions) + consumed_in_invocation(entity, versions)
        + consumed_in_invocation('quarantined_' ~ entity, versions) -%}
    {{ return(keys_of_batches(alias ~ '.' ~ key, versions, key, batches | unique | list)) }}
{%- endmacro %}

{#- The condition on `written` (the tested relation) keeping the rows this invocation wrote to `node` (a
    graph node: model or source); none when its tests read it whole. -#}
{% macro written_rows_condition(node) -%}
    {%- if not execute or node is none or not tests_read_written_rows() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set entities = var('elt_entities') -%}
    {%- set parents = node.depends_on.nodes if node.resource_type == 'model' else [] -%}
    {%- for name, entity in entities.items() -%}
        {%- set versions = 'int_' ~ name ~ '__versions' -%}
        {%- if node.resource_type == 'model' and node.name == versions -%}
            {{ return(keys_of_batches('written.' ~ entity.key, versions, entity.key, invocation_batch(versions))) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for name, entity in entities.items() -%}
        {%- set versions = 'int_' ~ name ~ '__versions' -%}
        {%- set raw = 'source.' ~ project_name ~ '.' ~ entity.source ~ '.' ~ entity.raw_table -%}
        {%- if node.unique_id == raw -%}
            {{ return(load_id_in('written._dlt_load_id', loads_read(versions, entity.source))) }}
        {%- elif raw in parents and node.config.materialized == 'view' -%}
            {{ return(load_id_in('written.load_id', loads_read(versions, entity.source))) }}
        {%- elif ('model.' ~ project_name ~ '.' ~ versions) in parents and node.config.unique_key == entity.key -%}
            {%- set batches = consumed_in_invocation(node.name, versions) -%}
            {{ return(keys_of_batches('written.' ~ entity.key, versions, entity.key, batches)) }}
        {%- endif -%}
    {%- endfor -%}
    {%- if node.resource_type == 'model' and node.name == 'daily_revenue' -%}
        {%- set batches = consumed_in_invocation(node.name, 'int_payments__versions') -%}
        {{ return(daily_revenue_written_dates('written.revenue_date', graph_relation(graph_model('int_payments__versions')), batches)) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- `column` among the keys (column `key`) of the rows of `versions` in `batches`; `1 = 0` when none. -#}
{% macro keys_of_batches(column, versions, key, batches) -%}
    {%- if batches | length == 0 -%}
        {{ return('1 = 0') }}
    {%- endif -%}
    {{ return(
        column ~ ' in (select written_batch.' ~ key ~ ' from ' ~ graph_relation(graph_model(versions))
        ~ ' as written_batch where written_batch.batch_id in (' ~ id_literals(batches) ~ '))'
    ) }}
{%- endmacro %}

{% macro load_id_in(column, loads) -%}
    {{ return(column ~ ' in (' ~ id_literals(loads) ~ ')' if loads | length > 0 else '1 = 0') }}
{%- endmacro %}

{#- The batch `versions` published in this invocation, when it wrote any row: [] or [invocation_id]. -#}
{% macro invocation_batch(versions) -%}
    {{ return(ids_of(
        "select batch_id from ops.dbt_batches where producer = '" ~ versions ~ "' and batch_id = '"
        ~ invocation_id ~ "'"
    )) }}
{%- endmacro %}

{#- The batches of `producer` that `consumer` consumed in this invocation. -#}
{% macro consumed_in_invocation(consumer, producer) -%}
    {{ return(ids_of(
        "select batch_id from ops.dbt_consumed where consumer = '" ~ consumer ~ "' and producer = '" ~ producer
        ~ "' and invocation_id = '" ~ invocation_id ~ "'"
    )) }}
{%- endmacro %}

{#- The completed loads of `source_name` that `versions` reads in this build: those it has not consumed
    (it runs after the tests of staging) and those it consumed in this invocation. -#}
{% macro loads_read(versions, source_name) -%}
    {%- set loads = graph_relation(graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '._dlt_loads']) -%}
    {%- set consumed = "select batch_id from ops.dbt_consumed where consumer = '" ~ versions
        ~ "' and producer = 'raw_" ~ source_name ~ "'" -%}
    {{ return(ids_of(
        "select load_id from " ~ loads ~ " where status = 0 and load_id not in (" ~ consumed ~ ")"
        ~ " union select batch_id from ops.dbt_consumed where consumer = '" ~ versions
        ~ "' and producer = 'raw_" ~ source_name ~ "' and invocation_id = '" ~ invocation_id ~ "'"
    )) }}
{%- endmacro %}

{% macro ids_of(query) -%}
    {{ return(run_query(query).columns[0].values() | map('string') | sort | list) }}
{%- endmacro %}

{% macro id_literals(ids) -%}
    {%- set quoted = [] -%}
    {%- for id in ids -%}
        {%- do quoted.append("'" ~ (id | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ return(quoted | join(', ')) }}
{%- endmacro %}

{#- The graph node a generic test's relation is: one of the test's parents (its model or source). -#}
{% macro tested_node(relation) -%}
    {%- for unique_id in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
        {%- if node is not none and (graph_relation(node) | string) == (relation | string) -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{% macro graph_model(name) -%}
    {{ return(graph.nodes.get('model.' ~ project_name ~ '.' ~ name)) }}
{%- endmacro %}

{#- The relation of a graph node, as ref() or source() renders it (neither may name a node the calling test
    does not depend on). -#}
{% macro graph_relation(node) -%}
    {{ return(api.Relation.create(
        database=node.database,
        schema=node.schema,
        identifier=node.identifier if node.resource_type == 'source' else node.alias,
    )) }}
{%- endmacro %}
