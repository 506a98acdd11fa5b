"""Liveness and readiness probes (outside /nhi, no token)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from nhi.jobs import redis_connection
from nhi.services import readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    checks = readiness.check(redis_connection())
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
