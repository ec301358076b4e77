{#- How the incremental models find their work.

    Intermediate models (`int_<entity>__versions`) hold one row per landed version with the rules'
    verdict. Each run they re-evaluate every version of the *affected* keys: keys with a version landed
    since the newest they hold (less the lookback), plus keys a dimension change may release or demote.
    Every row they write is stamped `evaluated_at` = this invocation's start.

    Canonical and quarantine models consume the intermediate rows evaluated since their own watermark
    (kept in ops.dbt_watermarks, because the contract fixes the canonical tables' columns), and save the
    new watermark in a post-hook. Consuming by evaluation time, not by "this invocation", keeps them
    right when an invocation selected only some models. -#}

{% macro evaluation_time() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00:00' as timestamp with time zone)
{%- endmacro %}

{#- Every version of the affected keys (all versions on a full build). -#}
{% macro affected_versions(staging, key, released_keys=none) -%}
    {%- if is_incremental() %}
    select *
    from {{ staging }}
    where {{ key }} in (
        select {{ key }}
        from {{ staging }}
        where loaded_at > (
            select coalesce(max(loaded_at), cast('1900-01-01 00:00:00+00:00' as timestamp with time zone))
            from {{ this }}
        ) - interval '{{ var("lookback_hours") }} hours'
        {%- if released_keys %}
        union
        select {{ key }} from ({{ released_keys }}) as released
        {%- endif %}
    )
    {%- else %}
    select * from {{ staging }}
    {%- endif %}
{%- endmacro %}

{#- The contract's "latest": greatest version (a missing or unparseable one is older than any other),
    then delivered last. `version_at` only makes the order total. -#}
{% macro version_order() -%}
    updated_at desc nulls last, delivered_at desc, delivery_seq desc, version_at desc nulls last
{%- endmacro %}

{#- The body of an intermediate model's last step: the rule set's verdict on every version of a CTE of
    checked versions — `failed_rules`, then whether each version is its key's latest and last good. -#}
{% macro verdicts(checked, rules, key) -%}
    select
        evaluated.*,
        {{ verdict_columns(key) }}
    from (
        select
            {{ checked }}.*,
            {{ failed_rules(rules) }} as failed_rules
        from {{ checked }}
    ) as evaluated
{%- endmacro %}

{#- The verdict per version, from `failed_rules`: is it the key's latest, is it the key's last good. -#}
{% macro verdict_columns(key) -%}
        row_number() over (partition by {{ key }} order by {{ version_order() }}) = 1 as is_latest,
        (
            failed_rules = ''
            and row_number() over (
                partition by {{ key }}
                order by case when failed_rules = '' then 0 else 1 end, {{ version_order() }}
            ) = 1
        ) as is_last_good,
        {{ evaluation_time() }} as evaluated_at
{%- endmacro %}

{#- The `evaluated_at` this model consumed last, as a SQL literal (the start of time when none). -#}
{% macro watermark() -%}
    {%- set default = "cast('1900-01-01 00:00:00+00:00' as timestamp with time zone)" -%}
    {%- if execute and is_incremental() -%}
        {%- set result = run_query(
            "select max(watermark) from ops.dbt_watermarks where model_name = '" ~ model.name ~ "'"
        ) -%}
        {%- set value = result.columns[0].values()[0] -%}
        {%- if value is not none -%}
            {{ return("cast('" ~ value.isoformat() ~ "' as timestamp with time zone)") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(default) }}
{%- endmacro %}

{#- A where-clause condition: rows evaluated since this model's watermark (all rows on a full build). -#}
{% macro evaluated_since_watermark() -%}
    {%- if is_incremental() -%} evaluated_at > {{ watermark() }} {%- else -%} true {%- endif -%}
{%- endmacro %}

{#- Post-hook: remember how far this model consumed its intermediate model. -#}
{% macro save_watermark(upstream) -%}
    delete from ops.dbt_watermarks where model_name = '{{ model.name }}';
    insert into ops.dbt_watermarks (model_name, watermark, saved_at)
    select '{{ model.name }}', max(evaluated_at), current_timestamp
    from {{ upstream }}
    having max(evaluated_at) is not null
{%- endmacro %}

{#- Post-hook of a canonical model: a key re-evaluated without any good version left (a cross-table rule
    it passed before fails now) must leave the table, as a full build would never have written it. -#}
{% macro delete_keys_without_good_version(upstream, key, target_key=none) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where {{ target_key or key }} in (
        select {{ key }}
        from {{ upstream }}
        where {{ evaluated_since_watermark() }}
        group by {{ key }}
        having max(case when is_last_good then 1 else 0 end) = 0
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hooks of a canonical model: remove keys left without a good version, then save the watermark. -#}
{% macro canonical_post_hooks(upstream, key) -%}
    {{ return([
        "{{ delete_keys_without_good_version(ref('" ~ upstream ~ "'), '" ~ key ~ "') }}",
        "{{ save_watermark(ref('" ~ upstream ~ "')) }}",
    ]) }}
{%- endmacro %}

{#- The body of a canonical model: the last good version of every key evaluated since the watermark. -#}
{% macro last_good_versions(upstream) -%}
    select *
    from {{ upstream }}
    where is_last_good and {{ evaluated_since_watermark() }}
{%- endmacro %}
