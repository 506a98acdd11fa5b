"""Liveness and readiness probes (outside /nhi, no token)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app

from nhi.extensions import db
from nhi.jobs import redis_connection

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    checks: dict[str, str] = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is logged, not shown
        current_app.logger.warning("readiness: database check failed: %s", exc)
        checks["database"] = "unavailable"
    finally:
        db.session.rollback()
    conn = redis_connection()
    if conn is not None:
        try:
            conn.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            current_app.logger.warning("readiness: redis check failed: %s", exc)
            checks["redis"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
