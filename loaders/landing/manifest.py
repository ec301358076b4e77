"""The manifest of the files a source has taken, kept in dlt's resource state so it commits with their rows.

Which files are read is decided by the manifest, not by a clock: it maps each file's path (relative to the
folder) to the identity of the delivery taken, `[size in bytes, modification time in µs]` from the one
listing a run makes. A file not in it, or whose identity differs (a re-delivery, whatever its new
modification time), is read whole; a file with the same identity is not opened. Entries are never dropped.
This module decides, from a listing, which deliveries are new and in what order they are taken; the
sources that read files (`payments_files`, ...) say what "delivered last" means for their rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Identity = list[int | None]
"""What tells two deliveries of one path apart: [size in bytes, modification time in µs since the epoch]."""


@dataclass(frozen=True)
class Delivery:
    path: str  # relative to the folder: the manifest's key
    name: str  # the file name, landed as `_source_file`
    identity: Identity
    delivered_at: datetime


class Manifest:
    """The deliveries already taken, kept in the resource state (committed with the rows):

    `files`: {path: identity}; `next_seq`: the `_delivery_seq` base of the next delivery taken;
    `delivered_until`: the latest `_delivered_at` taken, in µs (so later deliveries never sort before).
    """

    def __init__(self, state: dict[str, Any]) -> None:
        state.pop("incremental", None)  # the modification-time cursor this manifest replaced
        self._state = state
        self._files: dict[str, Identity] = state.setdefault("files", {})
        state.setdefault("next_seq", 0)

    @property
    def next_seq(self) -> int:
        return int(self._state["next_seq"])

    def new_deliveries(self, listing: Iterable[Mapping[str, Any]], started: datetime) -> list[Delivery]:
        """The listed files not yet taken as they are now, in the order they are to be taken."""
        floor = self._state.get("delivered_until")
        new = []
        for file in listing:
            modified = file["modification_date"]
            identity = [file.get("size_in_bytes"), _micros(modified)]
            if self._files.get(file["relative_path"]) == identity:
                continue
            delivered_at = min(modified, started)
            if floor is not None:
                delivered_at = max(delivered_at, _from_micros(floor))
            new.append(Delivery(file["relative_path"], file["file_name"], identity, delivered_at))
        return sorted(new, key=lambda delivery: (delivery.delivered_at, delivery.path))

    def take(self, delivery: Delivery, last_line: int) -> None:
        """Record a delivery as taken; its records used `next_seq` + line, up to `last_line`."""
        self._files[delivery.path] = delivery.identity
        self._state["next_seq"] = self.next_seq + last_line + 1
        taken = _micros(delivery.delivered_at)
        self._state["delivered_until"] = max(taken, self._state.get("delivered_until") or taken)


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
