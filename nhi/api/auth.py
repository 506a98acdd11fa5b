"""Local sign-in and the caller's view of itself."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from nhi.auth import current_principal
from nhi.schemas.auth import LoginSchema, TokenSchema, WhoAmISchema
from nhi.services import users
from nhi.tokens import issue_token

blp = Blueprint("auth", __name__, url_prefix="/nhi", description="Sign-in and the caller")


@blp.post("/auth/login")
@blp.arguments(LoginSchema)
@blp.response(200, TokenSchema)
@blp.doc(security=[])
def login(data: dict[str, Any]) -> dict[str, Any]:
    """Exchange a local user's e-mail and password for an access token."""
    user = users.authenticate(data["email"], data["password"])
    token, ttl = issue_token(user.id, user.tenant_id, user.roles)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


@blp.get("/whoami")
@blp.response(200, WhoAmISchema)
def whoami() -> dict[str, Any]:
    """The caller as the server sees it."""
    p = current_principal()
    body: dict[str, Any] = {"sub": p.sub, "tid": p.tenant_id, "roles": list(p.roles)}
    if p.nhi_type:
        body["nhi_type"] = p.nhi_type
    return body
