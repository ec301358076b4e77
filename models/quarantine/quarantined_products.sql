{{
    config(
        alias='products',
        unique_key='sku',
        post_hook=["{{ save_watermark(ref('int_products__versions')) }}"],
    )
}}

{{ quarantine_rows(ref('int_products__versions'), 'sku') }}
