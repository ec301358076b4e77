"""Constants of the orders API."""

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
