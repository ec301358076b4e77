{{
    config(
        alias='customers',
        unique_key='customer_id',
        post_hook=["{{ save_watermark(ref('int_customers__versions')) }}"],
    )
}}

{{ quarantine_rows(ref('int_customers__versions'), 'customer_id') }}
