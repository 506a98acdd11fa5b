"""Turning domain values into plain JSON values for audit details and event payloads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from nhi import clock


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.isoformat(value)
    return str(value)  # UUIDs, enums, decimals


def jsonable(value: Any) -> Any:
    """A deep copy of ``value`` made only of JSON types (datetimes as RFC 3339, UUIDs as text)."""
    return json.loads(json.dumps(value, default=_default))
