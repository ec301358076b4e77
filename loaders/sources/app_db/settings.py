"""Constants of the shop's OLTP database."""

# Rows are updated in place with `updated_at` bumped inside transactions: a transaction that commits
# after a run may carry an `updated_at` older than the newest one that run read. One hour covers any
# transaction this database allows; re-read versions merge onto themselves.
COMMIT_LAG_SECONDS = 3600
# A row whose `updated_at` is later than the extraction's start plus this tolerance lands but does not
# move the cursor: one customer stamped in 2099 must not hide the rows changed after it. The tolerance
# allows for ordinary disagreement between the database's clock and ours, and stays well below the
# commit lag.
FUTURE_VERSION_TOLERANCE_SECONDS = 5 * 60
CHUNK_SIZE = 50_000
