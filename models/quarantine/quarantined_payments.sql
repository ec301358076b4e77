{{
    config(
        alias='payments',
        unique_key='payment_id',
        post_hook=["{{ save_watermark(ref('int_payments__versions')) }}"],
    )
}}

{{ quarantine_rows(ref('int_payments__versions'), 'payment_id') }}
