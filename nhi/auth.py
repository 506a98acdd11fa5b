"""Bearer-token authentication, the current principal, and role guards.

Every ``/nhi`` route requires a valid token except the public ones listed in ``PUBLIC_ENDPOINTS``;
the check runs once in ``before_request`` so that a new route cannot forget it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from flask import Flask, Response, g, request
from flask_jwt_extended import get_jwt, verify_jwt_in_request

from nhi import clock
from nhi.errors import Forbidden, problem
from nhi.extensions import db, jwt
from nhi.models.identities import Identity
from nhi.principal import NHI_ROLES, Principal

PUBLIC_ENDPOINTS: set[str] = {
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "health.healthz",
    "health.readyz",
    "auth.login",
    "static",
}

F = TypeVar("F", bound=Callable[..., Any])


def _parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _claims_problem(claims: dict[str, Any]) -> str | None:
    if "exp" not in claims:
        return "the token has no exp claim"
    if _parse_uuid(claims.get("sub")) is None:
        return "the token's sub claim is not a UUID"
    if _parse_uuid(claims.get("tid")) is None:
        return "the token's tid claim is not a tenant UUID"
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return "the token's roles claim must be a list of strings"
    return None


def _nhi_type_of(roles: Iterable[str]) -> str | None:
    for role in roles:
        if role in NHI_ROLES:
            return NHI_ROLES[role]
    return None


def _unauth(detail: str) -> Response:
    return problem(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def init_jwt_callbacks() -> None:
    @jwt.token_verification_loader
    def _verify_claims(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
        g.nhi_claims_problem = _claims_problem(claims)
        return g.nhi_claims_problem is None

    @jwt.token_verification_failed_loader
    def _claims_failed(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return _unauth(getattr(g, "nhi_claims_problem", None) or "The token's claims are invalid.")

    @jwt.token_in_blocklist_loader
    def _nhi_token_revoked(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
        # An NHI token is only as good as its identity right now: suspended, expired,
        # decommissioned or deleted identities and pre-cutoff tokens are refused per request.
        nhi_type = _nhi_type_of(claims.get("roles") or [])
        if nhi_type is None:
            return False
        identity = db.session.execute(
            db.select(Identity).where(
                Identity.id == uuid.UUID(str(claims["sub"])),
                Identity.tenant_id == uuid.UUID(str(claims["tid"])),
                Identity.nhi_type == nhi_type,
                Identity.deleted_at.is_(None),
            )
        ).scalar_one_or_none()
        if identity is None or identity.effective_status(clock.now()) != "active":
            return True
        if identity.tokens_valid_after is not None:
            issued = claims.get("iat")
            if not isinstance(issued, int | float):
                return True
            if datetime.fromtimestamp(issued, UTC) < identity.tokens_valid_after.replace(
                microsecond=0
            ):
                return True
        g.nhi_identity = identity
        return False

    @jwt.revoked_token_loader
    def _revoked(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return _unauth("The token's identity is not active or the token has been revoked.")

    @jwt.unauthorized_loader
    def _missing(reason: str) -> Response:
        return problem(
            401, f"Authentication required: {reason}.", headers={"WWW-Authenticate": "Bearer"}
        )

    @jwt.invalid_token_loader
    def _invalid(reason: str) -> Response:
        return _unauth(f"The token is invalid: {reason}.")

    @jwt.expired_token_loader
    def _expired(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return _unauth("The token has expired.")

    @jwt.user_lookup_error_loader
    def _lookup_failed(_header: dict[str, Any], _claims: dict[str, Any]) -> Response:
        return _unauth("The token's subject is unknown.")

    @jwt.additional_claims_loader
    def _no_extra(identity: Any) -> dict[str, Any]:
        return {}


def _authenticate() -> None:
    """before_request: every /nhi route but the public ones needs a valid bearer token."""
    if not request.path.startswith("/nhi") or request.endpoint is None:
        return
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    verify_jwt_in_request(locations=["headers"])
    g.principal = principal_from_claims(get_jwt())


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The caller of a verified token (claims already checked by ``_claims_problem``)."""
    roles = tuple(claims["roles"])
    return Principal(
        sub=str(uuid.UUID(str(claims["sub"]))),
        tenant_id=uuid.UUID(str(claims["tid"])),
        roles=roles,
        nhi_type=_nhi_type_of(roles),
    )


def init_app(app: Flask) -> None:
    init_jwt_callbacks()
    app.before_request(_authenticate)


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:  # a view reached without the guard: a wiring bug, fail closed
        raise Forbidden("No authenticated principal.")
    return cast(Principal, principal)


def require(*human_roles: str, nhi_self: str | None = None) -> Callable[[F], F]:
    """Allow humans holding any of ``human_roles`` ("*" = any human of the tenant) and, when
    ``nhi_self`` names a view argument, an NHI token whose identity is that argument."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal.is_nhi:
                target = kwargs.get(nhi_self) if nhi_self else None
                if target is None or str(target) != principal.sub:
                    raise Forbidden("This token may act only on its own identity.")
            elif "*" not in human_roles and not principal.has_role(*human_roles):
                raise Forbidden(
                    "This action requires the role "
                    + " or ".join(repr(r) for r in human_roles)
                    + "."
                )
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator
