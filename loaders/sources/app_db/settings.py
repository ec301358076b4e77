"""Constants of the shop's OLTP database."""

# Rows are updated in place with `updated_at` bumped inside transactions: a transaction that commits
# after a run may carry an `updated_at` older than the newest one that run read. One hour covers any
# transaction this database allows; re-read versions merge onto themselves.
COMMIT_LAG_SECONDS = 3600
CHUNK_SIZE = 50_000
