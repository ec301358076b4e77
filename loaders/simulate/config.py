"""The knobs of a simulated world. Small defaults: a week of them generates in well under a second."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]


class SimulationConfig(BaseModel):
    """Every share is a probability applied per record (or per file), drawn from the seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 7
    start_date: date = date(2024, 3, 1)
    customers: Count = 50
    """Customers who exist before day 1."""
    new_customers_per_day: Count = 5
    products: Annotated[int, Field(ge=1)] = 20
    orders_per_day: Count = 40
    update_rate: Rate = 0.2
    """Share of open orders (placed, paid, shipped) that move on to their next status on a given day."""
    late_version_rate: Rate = 0.05
    """Share of order versions whose `updated_at` lags their visibility by up to 6 hours (clock skew)."""
    invalid_rate: Rate = 0.03
    """Share of records given one contract 2.2 rule violation; they land and are quarantined."""
    damaged_rate: Rate = 0.01
    """Share of CSV rows and API versions a loader cannot land at all (dead letters)."""
    late_dimension_rate: Rate = 0.05
    """Share of new orders placed by a brand-new customer whose app_db row appears only the next day."""
    redelivery_rate: Rate = 0.1
    """Share of settlement files re-delivered the day after delivery, same name, with corrections."""
    late_file_rate: Rate = 0.1
    """Share of settlement files delivered 1-3 days late."""
    files_per_day: Annotated[int, Field(ge=1, le=99)] = 2
    api_fault_rate: Rate = 0.0
    """Share of API requests answered with a transient fault, for whoever starts the server from this
    config (`FaultPlan.from_rate(config.api_fault_rate, config.seed)`); `generate` does not use it."""
