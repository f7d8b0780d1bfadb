"""One value of a date or text column as a number: the standard library only, so that the service's
drift tracker (which must not load pandas) and the model's features (kinds.py) agree exactly."""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECONDS_PER_DAY = 86_400.0


def days_since_epoch(value: object) -> float:
    """Days from 1970-01-01 to an ISO date or datetime (text, or a datetime); NaN when it is none."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return math.nan
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH).total_seconds() / SECONDS_PER_DAY


def text_bucket(value: object, buckets: int) -> int:
    """The bucket of a text value: its CRC-32 (stable across processes, unlike hash()) modulo `buckets`."""
    return zlib.crc32(str(value).encode("utf-8")) % buckets
