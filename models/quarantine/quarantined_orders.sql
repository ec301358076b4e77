{{
    config(
        alias='orders',
        unique_key='order_id',
        post_hook=["{{ save_watermark(ref('int_orders__versions')) }}"],
    )
}}

{{ quarantine_rows(ref('int_orders__versions'), 'order_id') }}
