{#- How the incremental models know what they have consumed — by ids, never by clocks.

    Producers publish batches:
    - a dlt load is a batch of its raw dataset: a completed load's id (completed_loads, macros/staging.sql);
    - an intermediate model's write is a batch of that model: every row it writes carries the
      invocation's id as `batch_id`, and a post-hook publishes the id in `ops.dbt_batches`.

    Consumers record, in the same transaction as the rows they write, the batches they have read
    (`ops.dbt_consumed`: consumer, producer, batch id). An incremental run reads what belongs to the
    batches it has not consumed yet, whatever invocation produced them, in whatever order and with
    whatever `--select`; a run that never happens leaves its batches pending for the next one.

    Every write of an intermediate model replaces all versions of each key it touches, so the rows of a
    key always carry one batch id: reading the rows of unconsumed batches reads every version of every
    key that changed since. -#}

{#- The ids a producer has published: completed loads of a dlt source, or batches of a model. -#}
{% macro published_batches(producer) -%}
    {%- if producer.startswith('raw_') -%}
    select completed.load_id as batch_id from ({{ completed_loads(producer[4:]) }}) as completed
    {%- else -%}
    select batch_id from ops.dbt_batches where producer = '{{ producer }}'
    {%- endif -%}
{%- endmacro %}

{% macro consumed_batches(producer) -%}
    select batch_id from ops.dbt_consumed
    where consumer = '{{ model.name }}' and producer = '{{ producer }}'
{%- endmacro %}

{#- A query: the batch ids of `producer` this model has not consumed yet. -#}
{% macro unconsumed_batches_query(producer) -%}
    select distinct published.batch_id
    from ({{ published_batches(producer) }}) as published
    where published.batch_id not in ({{ consumed_batches(producer) }})
{%- endmacro %}

{#- The batch ids of `producer` this model has not consumed yet, as the list inside `x in (...)`. -#}
{% macro unconsumed_batches(producer) -%}
    {{ pending_ids(unconsumed_batches_query(producer)) }}
{%- endmacro %}

{#- The load ids of a dlt source this model has not consumed yet, as the list inside `x in (...)`. -#}
{% macro unconsumed_loads(source_name) -%}
    {{ pending_ids(unconsumed_batches_query('raw_' ~ source_name)) }}
{%- endmacro %}

{#- The safety margin (see dbt_project.yml), appended to a query of the keys landed in unconsumed loads:
    `union` the keys of the newest `lookback_versions` versions (by delivery) of the newest load of
    `source_name` this model has already consumed. Bounded by versions, not loads: after a first load
    of the whole history, the newest load is the whole history. -#}
{% macro lookback_keys(relation, key, source_name) -%}
    {%- set versions = var('lookback_versions') | int -%}
    {%- if versions > 0 %}
    union
    select lookback.{{ key }}
    from (
        select {{ key }} from {{ relation }}
        where load_id in ({{ pending_ids(consumed_batches('raw_' ~ source_name) ~ ' order by batch_id desc limit 1') }})
        order by delivery_seq desc
        limit {{ versions }}
    ) as lookback
    {%- endif %}
{%- endmacro %}

{#- Take the writer lock in the transaction dbt renders the model in, before the first read the model
    makes while it is rendered: a read before it (a seed, a table of ops) holds that table while the lock
    is awaited, and a writer holding the lock that then rewrites the table (`dbt seed` beside it) would
    wait on this one: a deadlock, which PostgreSQL breaks by failing one of them. -#}
{% macro hold_writer_lock() -%}
    {%- set lock = serialize_writers() | trim -%}
    {%- if lock -%}
        {%- do run_query(lock) -%}
    {%- endif -%}
{%- endmacro %}

{#- The ids `query` returns, resolved when the model is rendered and written as literals (`null` when
    there are none): the planner then estimates them and serves them from an index, where it assumes a
    `not in (subquery)` keeps half the loads and scans the raw history. The writer lock is taken first:
    dbt renders a model on the connection and in the transaction its materialization then writes and
    commits in, so no load completes and no batch is published between this read and the post-hook
    (record_consumed) that records the same set as consumed. On DuckDB the dbt process holds the file. -#}
{% macro pending_ids(query) -%}
    {%- if not execute -%}
        {{ return(query) }}  {#- parsing: never run, dbt only records the refs -#}
    {%- endif -%}
    {%- do hold_writer_lock() -%}
    {%- set ids = run_query(query).columns[0].values() | map('string') | sort -%}
    {%- if ids | length == 0 -%}
    null
    {%- else -%}
    {%- for id in ids %}'{{ id | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: every batch of `producer` that exists now has been consumed by this model, in this invocation
    (its data tests read the rows of what it consumed in it: macros/test_scope.sql). Runs in the model's
    transaction, after its rows are written; the writer lock keeps new batches out meanwhile. -#}
{% macro record_consumed(producer) -%}
    insert into ops.dbt_consumed (consumer, producer, batch_id, consumed_at, invocation_id)
    select '{{ model.name }}', '{{ producer }}', pending.batch_id, current_timestamp, '{{ invocation_id }}'
    from ({{ unconsumed_batches_query(producer) }}) as pending
{%- endmacro %}

{#- Post-hook of an intermediate model: publish this invocation's batch, when it wrote any row. -#}
{% macro publish_batch() -%}
    insert into ops.dbt_batches (producer, batch_id, batch_seq, rules_fingerprint, published_at)
    select
        '{{ model.name }}',
        '{{ invocation_id }}',
        (select coalesce(max(batch_seq), 0) + 1 from ops.dbt_batches where producer = '{{ model.name }}'),
        max(rules_fingerprint),
        current_timestamp
    from {{ this }}
    where batch_id = '{{ invocation_id }}'
    having count(*) > 0
{%- endmacro %}

{#- The post-hooks of an intermediate model: fresh planner statistics (the next models join it at once),
    publish, then record the loads and the judged-against batches it consumed. None in a replay preview,
    which is thrown away. -#}
{% macro evaluation_post_hooks(loads_of, judged_against=[]) -%}
    {%- if var('replay_preview_schema', none) -%}
        {{ return([]) }}  {#- a preview (elt replay --dry-run) consumes nothing -#}
    {%- endif -%}
    {%- set hooks = [
        "{{ refresh_statistics() }}",
        "{{ publish_batch() }}",
        "{{ record_consumed('raw_" ~ loads_of ~ "') }}",
    ] -%}
    {%- for producer in judged_against -%}
        {%- do hooks.append("{{ record_consumed('" ~ producer ~ "') }}") -%}
    {%- endfor -%}
    {{ return(hooks) }}
{%- endmacro %}

{#- What a rule set's verdicts depend on besides the versions themselves: the rules' text and the
    seeds' codes. Returns {fingerprint: a SQL expression of their digest, changed}: `changed` when the
    last batch this model published was evaluated under another fingerprint, so every version must be
    judged again. The digest is computed by the warehouse from the seed tables as they are (a partial
    selection that skips `dbt seed` keeps the old codes and the old fingerprint). -#}
{% macro rule_inputs(rules_text, seeds) -%}
    {%- set parts = [] -%}
    {%- for seed, column in seeds.items() | sort -%}
        {%- do parts.append(
            "coalesce((select " ~ sorted_text_list(column) ~ " from " ~ ref(seed) ~ "), '')"
        ) -%}
    {%- endfor -%}
    {%- set fingerprint = "md5('" ~ local_md5(rules_text) ~ "' || '|' || " ~ (parts | join(" || '|' || ")) ~ ")" -%}
    {%- set result = {'fingerprint': fingerprint, 'changed': false} -%}
    {%- if execute and is_incremental() -%}
        {%- do hold_writer_lock() -%}
        {%- set current = run_query("select " ~ fingerprint).columns[0].values()[0] -%}
        {%- set stored = run_query(
            "select rules_fingerprint from ops.dbt_batches where producer = '" ~ model.name
            ~ "' order by batch_seq desc limit 1"
        ).columns[0].values() -%}
        {%- do result.update({'changed': (stored | length == 0) or stored[0] != current}) -%}
    {%- endif -%}
    {{ return(result) }}
{%- endmacro %}

{#- The contract's "latest": greatest version (a missing or unparseable one is older than any other),
    then delivered last. `version_key` only makes the order total. -#}
{% macro version_order() -%}
    updated_at desc nulls last, delivered_at desc, delivery_seq desc, version_key desc
{%- endmacro %}

{#- The last step of an intermediate model: the rule set's verdict on every version of a CTE of checked
    versions (all versions of each key it holds) — the broken rules, whether the version is its key's
    latest and its last good — and the batch it belongs to. -#}
{% macro verdicts(checked, rules, key, inputs) -%}
    select
        evaluated.*,
        row_number() over (partition by {{ key }} order by {{ version_order() }}) = 1 as is_latest,
        (
            failed_rules = ''
            and row_number() over (
                partition by {{ key }}
                order by case when failed_rules = '' then 0 else 1 end, {{ version_order() }}
            ) = 1
        ) as is_last_good,
        cast('{{ invocation_id }}' as {{ type_text(64) }}) as batch_id,
        cast({{ inputs.fingerprint }} as {{ type_text(64) }}) as rules_fingerprint,
        {{ evaluation_time() }} as evaluated_at
    from (
        select
            {{ checked }}.*,
            {{ failed_rules(rules) }} as failed_rules
        from {{ checked }}
    ) as evaluated
{%- endmacro %}

{% macro evaluation_time() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00:00' as {{ type_timestamptz() }})
{%- endmacro %}

{#- Post-hook of a canonical model: a key re-evaluated without any good version left (a cross-table rule
    or a rule change fails it now) leaves the table, as a full build would never have written it. -#}
{% macro delete_keys_without_good_version(upstream, key) -%}
    {%- if is_incremental() -%}
    {%- set without_good_version -%}
        left_out.{{ key }} in (
            select {{ key }}
            from {{ ref(upstream) }}
            where batch_id in ({{ unconsumed_batches(upstream) }})
            group by {{ key }}
            having max(case when is_last_good then 1 else 0 end) = 0
        )
    {%- endset -%}
    {{ delete_where(this, 'left_out', without_good_version) }}
    {%- endif -%}
{%- endmacro %}

{#- `delete from relation as alias where condition`; on Spark a rewrite (macros/materializations). -#}
{% macro delete_where(relation, alias, condition) -%}
    {{ return(adapter.dispatch('delete_where', 'elt')(relation, alias, condition)) }}
{%- endmacro %}

{% macro default__delete_where(relation, alias, condition) -%}
    delete from {{ relation }} as {{ alias }}
    where {{ condition }}
{%- endmacro %}

{#- Post-hooks of a canonical model: remove keys left without a good version, then record the batches
    consumed. -#}
{% macro canonical_post_hooks(upstream, key) -%}
    {{ return([
        "{{ delete_keys_without_good_version('" ~ upstream ~ "', '" ~ key ~ "') }}",
        "{{ record_consumed('" ~ upstream ~ "') }}",
    ]) }}
{%- endmacro %}

{#- PostgreSQL plans the next model's joins on this table's statistics; autovacuum refreshes them only
    later, and a plan made on the statistics of the table before its rewrite can take minutes. -#}
{% macro refresh_statistics() -%}
    {{ return(adapter.dispatch('refresh_statistics', 'elt')()) }}
{%- endmacro %}

{% macro default__refresh_statistics() -%}
    analyze {{ this }}
{%- endmacro %}

{% macro duckdb__refresh_statistics() -%}
{%- endmacro %}

{% macro spark__refresh_statistics() -%}
{%- endmacro %}
