"""A deterministic simulator of the three source systems of the data contract (section 1).

`generate(root, config, through_day)` writes a whole world into a folder; `AppDb`, `ApiStore` and
`write_payments_file` plant exact records for a test; `ApiServer` serves `root/api.db` as the orders API.

Layout of a simulation root: `app.db` (app_db), `api.db` (behind shop_api), `payments/` (payments_files).
"""

from loaders.simulate.api_server import ApiServer, FaultPlan, serve_forever
from loaders.simulate.catalog import UNKNOWN_COUNTRY, UNKNOWN_CURRENCY, UNKNOWN_CUSTOMER_ID, UNKNOWN_ORDER_ID
from loaders.simulate.config import SimulationConfig
from loaders.simulate.stores import (
    ApiStore,
    AppDb,
    payments_dir,
    render_payments_csv,
    write_payments_file,
)
from loaders.simulate.timeline import day_start
from loaders.simulate.timestamps import iso_timestamp, sqlite_timestamp
from loaders.simulate.world import WorldSummary, generate, generated_day

__all__ = [
    "UNKNOWN_COUNTRY",
    "UNKNOWN_CURRENCY",
    "UNKNOWN_CUSTOMER_ID",
    "UNKNOWN_ORDER_ID",
    "ApiServer",
    "ApiStore",
    "AppDb",
    "FaultPlan",
    "SimulationConfig",
    "WorldSummary",
    "day_start",
    "generate",
    "generated_day",
    "iso_timestamp",
    "payments_dir",
    "render_payments_csv",
    "serve_forever",
    "sqlite_timestamp",
    "write_payments_file",
]
