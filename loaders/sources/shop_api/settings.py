"""Constants of the orders API and the defaults of its client (each default is a source setting too,
`SOURCES__SHOP_API__<NAME>`, e.g. `SOURCES__SHOP_API__REQUEST_DEADLINE=120`)."""

ORDERS_PATH = "/v1/orders"
MAX_PAGE_SIZE = 1000
# The service's shards disagree on the clock by up to 6 h (contract 1.1): a version up to 6 h older than
# the newest one served can still appear, so every run re-reads that much behind its cursor.
LATE_VERSION_LAG_SECONDS = 6 * 3600
# A version stamped later than the extraction's start plus this tolerance lands but does not move the
# cursor: one order stamped in 2099 must not hide the versions still to come. The tolerance allows for
# ordinary disagreement between the service's clock and ours, and stays well below the lag so a version
# it lets through still leaves the cursor re-reading behind the present.
FUTURE_VERSION_TOLERANCE_SECONDS = 5 * 60

# -- retries -----------------------------------------------------------------------------------------
# Transient answers (429, 5xx, a dropped connection, a timeout, a body cut short, a 200 that is not an
# orders page) are retried; any other 4xx fails the run at once. Every request is bounded twice: by
# attempts and by time, whichever comes first.

# `request_timeout`: seconds to connect, and seconds of silence while reading, before an attempt counts
# as a timeout (so a hung server costs at most this per attempt).
REQUEST_TIMEOUT_SECONDS = 30.0
# `request_max_attempts`: attempts per page, the first one included.
REQUEST_MAX_ATTEMPTS = 6
# `request_backoff_factor`: the wait before the n-th retry is factor * 2**(n-1) seconds, capped, then
# jittered to a uniformly drawn 50-100 % of it so that many clients failed by one outage do not return in
# step. Unset, dlt's own `RUNTIME__REQUEST_BACKOFF_FACTOR` applies, else this.
REQUEST_BACKOFF_FACTOR = 1.0
# `request_max_retry_delay`: the cap of one wait, the server's `Retry-After` included (a server asking
# for an hour gets this, then another attempt, and the deadline below decides).
REQUEST_MAX_RETRY_DELAY_SECONDS = 60.0
# `request_deadline`: the total time one page may take over all its attempts and waits; no retry starts
# whose wait would end past it. A page then costs at most this plus one `request_timeout`, so a scheduled
# run fails within minutes of an outage rather than holding the warehouse's writer lock for hours.
REQUEST_DEADLINE_SECONDS = 300.0

# -- pagination --------------------------------------------------------------------------------------
# `max_empty_pages`: an empty page with a `next_cursor` is followed (the service scanned a shard with
# nothing visible to us; the end is `next_cursor: null`, never an empty page), but this many empty pages
# in a row stop the run as a fault of the service, as does a `next_cursor` that was already followed.
MAX_EMPTY_PAGES_IN_A_ROW = 100
