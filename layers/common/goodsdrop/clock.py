"""The one clock: this host's time, and the three forms GoodsDrop keeps times in.

- Epoch milliseconds (`now_ms`): ULIDs, reservations and their expiry, Redis scripts (the
  caller passes its time; see goodsdrop.ratelimit for why not Redis' TIME), token buckets.
- Aware UTC datetimes (`now`, `from_ms`, `from_db`): what the domain compares and the API shows
  (`iso`: ISO-8601 in UTC with a Z).
- Naive UTC datetimes (`db_now`, `to_db`, `ms_to_db`): what MySQL's DATETIME(3) columns hold.

Imports nothing of goodsdrop, so every module may use it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """This host's clock in epoch milliseconds."""
    return int(time.time() * 1000)


def now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def from_ms(epoch_ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def to_ms(moment: datetime) -> int:
    """A datetime in epoch milliseconds (a naive one is UTC, as MySQL hands it out)."""
    return int((moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def db_now() -> datetime:
    """Now, as the naive UTC datetime a DATETIME column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def ms_to_db(epoch_ms: int) -> datetime:
    """Epoch milliseconds as the naive UTC datetime a DATETIME column holds."""
    return from_ms(epoch_ms).replace(tzinfo=None)


def to_db(moment: datetime | None) -> datetime | None:
    """An aware datetime as the naive UTC datetime a DATETIME column holds (None stays None)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None else None


def from_db(value: datetime | None) -> datetime | None:
    """A DATETIME column's value (naive, UTC) as an aware UTC datetime (None stays None)."""
    return value.replace(tzinfo=UTC) if value is not None else None


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, to the second, as the API shows times (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_iso_ms() -> str:
    """Now in ISO-8601 UTC with a Z, to the millisecond (an event's `occurred_at`)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
