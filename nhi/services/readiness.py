"""What ``/readyz`` checks: the database and, when configured, Redis."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from redis import Redis

from nhi.extensions import db

log = logging.getLogger(__name__)


def check(redis: Redis | None) -> dict[str, str]:
    """``{"database": "ok" | "unavailable", "redis"?: ...}``; failures are logged, not raised."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("readiness: database check failed: %s", exc)
        checks["database"] = "unavailable"
    finally:
        db.session.rollback()
    if redis is not None:
        try:
            redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            log.warning("readiness: redis check failed: %s", exc)
            checks["redis"] = "unavailable"
    return checks
