{#- Run before every invocation: the ops schema, the incremental models' consumed state (see
    macros/incremental.sql), and (PostgreSQL) the one function the cross-database macros need. All
    idempotent. -#}
{% macro ensure_ops_objects() -%}
    {{ return(adapter.dispatch('ensure_ops_objects', 'elt')()) }}
{%- endmacro %}

{% macro default__ensure_ops_objects() -%}
    {{ serialize_writers() }};  -- two invocations starting at once must not race on the DDL below
    {{ consumed_state_tables() }}
    create or replace function ops.try_cast_timestamptz(value text) returns timestamptz
    language plpgsql immutable set timezone = 'UTC' as $fn$
    begin
        return value::timestamptz;
    exception when others then
        return null;
    end
    $fn$;
{%- endmacro %}

{% macro duckdb__ensure_ops_objects() -%}
    {{ consumed_state_tables() }}
{%- endmacro %}

{#- Spark runs one statement per call and has no primary keys: the same tables as Parquet, created here.
    The columns are consumed_state_tables()'s: a change to one is a change to both. A Spark warehouse
    made before ops.dbt_consumed had `invocation_id` is upgraded by hand, once (docs/spark.md): the
    hook's queries return no rows to read the table's columns from on Spark. -#}
{% macro spark__ensure_ops_objects() -%}
    {%- do run_query("create database if not exists ops") -%}
    {%- do run_query(
        "create table if not exists ops.dbt_batches (producer string, batch_id string, batch_seq bigint,"
        " rules_fingerprint string, published_at timestamp) using parquet"
    ) -%}
    {%- do run_query(
        "create table if not exists ops.dbt_consumed (consumer string, producer string, batch_id string,"
        " consumed_at timestamp, invocation_id string) using parquet"
    ) -%}
{%- endmacro %}

{#- Which batches each producer published (loads publish through dlt's own `_dlt_loads`) and which each
    consumer has read. -#}
{% macro consumed_state_tables() -%}
    create schema if not exists ops;
    create table if not exists ops.dbt_batches (
        producer varchar(256) not null,
        batch_id varchar(64) not null,
        batch_seq bigint not null,
        rules_fingerprint varchar(64),
        published_at timestamp with time zone not null,
        primary key (producer, batch_id)
    );
    create table if not exists ops.dbt_consumed (
        consumer varchar(256) not null,
        producer varchar(256) not null,
        batch_id varchar(64) not null,
        consumed_at timestamp with time zone not null,
        invocation_id varchar(64),
        primary key (consumer, producer, batch_id)
    );
    {%- if not consumed_by_invocation() %}
    alter table ops.dbt_consumed add column if not exists invocation_id varchar(64);
    {%- endif %}
{%- endmacro %}

{#- Whether ops.dbt_consumed records the invocation that consumed each batch (`invocation_id`, read by the
    data tests: macros/test_scope.sql). A table made before it lacks the column: added once, when missing
    (on PostgreSQL an `alter table` locks the table whole, even when it changes nothing). Its rows from
    before have none: those batches were consumed by no invocation that tests them now. -#}
{% macro consumed_by_invocation() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = run_query(
        "select count(*) from information_schema.columns"
        " where table_schema = 'ops' and table_name = 'dbt_consumed' and column_name = 'invocation_id'"
    ).columns[0].values()[0] -%}
    {{ return(found | int > 0) }}
{%- endmacro %}


{#- Pre-hook of every model and seed: one writer at a time, whoever started dbt. On PostgreSQL the model's
    transaction waits for an advisory lock that the loaders also hold while they load (see
    loaders/locking.py), so no load commits between a model's read of its unconsumed batches and the
    post-hook that records them. DuckDB needs nothing: one process at a time opens the file to write. -#}
{% macro serialize_writers() -%}
    {{ return(adapter.dispatch('serialize_writers', 'elt')()) }}
{%- endmacro %}

{#- Under `elt`, the harness names the session holding its run lock (ELT_RUN_LOCK_SESSION): a model whose
    run has lost it (the session died with the server) refuses to write, so nothing is written without it. -#}
{% macro default__serialize_writers() -%}
    select pg_advisory_xact_lock(hashtext('{{ writer_lock_name() }}'))
    {%- set session = env_var('ELT_RUN_LOCK_SESSION', '') -%}
    {%- if session | length > 0 %};
    do $$ begin
        if not exists (
            select 1 from pg_locks where locktype = 'advisory' and granted and pid = {{ session | int }}
        ) then
            raise exception 'elt: the run lost its run lock (the session holding it is gone): nothing more is written';
        end if;
    end $$
    {%- endif %}
{%- endmacro %}

{% macro duckdb__serialize_writers() -%}
{%- endmacro %}

{#- Spark has no lock to wait on: `elt`'s run lock orders its loads and dbt (loaders/locking.py). -#}
{% macro spark__serialize_writers() -%}
{%- endmacro %}

{% macro writer_lock_name() -%}
    elt:warehouse-writer
{%- endmacro %}
