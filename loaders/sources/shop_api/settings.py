"""Constants of the orders API."""

ORDERS_PATH = "/v1/orders"
MAX_PAGE_SIZE = 1000
# The service's shards disagree on the clock by up to 6 h (contract 1.1): a version up to 6 h older than
# the newest one served can still appear, so every run re-reads that much behind its cursor.
LATE_VERSION_LAG_SECONDS = 6 * 3600
