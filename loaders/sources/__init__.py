"""dlt sources, one package per source system (the verified-sources layout)."""
