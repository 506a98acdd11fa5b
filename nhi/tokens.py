"""Minting access tokens (sign-in, CLI, NHI token endpoint) with the claims nhi relies on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from flask import current_app
from flask_jwt_extended import create_access_token


def issue_token(
    sub: uuid.UUID | str,
    tenant_id: uuid.UUID | str,
    roles: Sequence[str],
    ttl_seconds: int | None = None,
) -> tuple[str, int]:
    """A signed JWT with ``sub``, ``tid``, ``roles``, ``iat``, ``exp`` and ``jti``; and its TTL."""
    ttl = int(ttl_seconds or current_app.config["ACCESS_TOKEN_TTL_SECONDS"])
    token = create_access_token(
        identity=str(sub),
        additional_claims={"tid": str(tenant_id), "roles": list(roles)},
        expires_delta=timedelta(seconds=ttl),
    )
    return token, ttl
