"""Portal blueprint, sign-in/out and the per-request session check."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt as pyjwt
import marshmallow as ma
from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_jwt_extended import (
    get_jwt,
    set_access_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException

from nhi import clock
from nhi.auth import principal_from_claims
from nhi.errors import DomainError, Unauthorized
from nhi.schemas.auth import LoginSchema
from nhi.services import users
from nhi.tokens import issue_token

bp = Blueprint("portal", __name__, url_prefix="/portal")

PORTAL_ROLES = ("admin", "reviewer")
PUBLIC = {"portal.login", "portal.login_submit"}
# (endpoint, label) of the navigation; each area's module appends its own entry.
PORTAL_NAV: list[tuple[str, str]] = []


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def is_fragment_request() -> bool:
    """htmx asked for a piece of a page (boosted navigations want whole pages)."""
    return is_htmx() and request.headers.get("HX-Boosted") != "true"


def render(template: str, status: int = 200, **context: Any) -> Response:
    resp = make_response(render_template(template, **context), status)
    resp.headers["Vary"] = "HX-Request"
    return resp


def go(target: str, code: int = 303) -> Response:
    """A redirect typed as Flask's Response (cookies can be set on it)."""
    return make_response(redirect(target, code))


def _safe_next(target: str | None) -> str:
    """Only same-site portal paths are followed after sign-in (no open redirect)."""
    default = url_for("portal.home")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/portal"):
        return default
    return target


def _to_login() -> Response:
    target = url_for("portal.login", next=request.full_path.rstrip("?"))
    if is_htmx():
        # An htmx request must not swap a sign-in page into a fragment: send the browser there.
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = target
    else:
        resp = go(target, 302)
    unset_jwt_cookies(resp)
    return resp


@bp.before_request
def load_session() -> Response | None:
    if request.endpoint in PUBLIC:
        return None
    try:
        verify_jwt_in_request(locations=["cookies"])
    except CSRFError:
        return render(
            "portal/error.html",
            403,
            message="The form expired or was not sent by "
            "this site (CSRF check failed). Reload the page and try again.",
        )
    except (JWTExtendedException, pyjwt.PyJWTError):
        return _to_login()
    claims = get_jwt()
    principal = principal_from_claims(claims)
    if principal.is_nhi or not principal.has_role(*PORTAL_ROLES):
        return render("portal/error.html", 403, message="Your account has no portal access.")
    g.principal = principal
    g.csrf_token = claims.get("csrf", "")
    return None


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> Response:
    """Portal pages answer in HTML, never with the API's problem+json."""
    return render("portal/error.html", exc.status, message=exc.detail)


@bp.app_context_processor
def portal_context() -> dict[str, Any]:
    return {
        "principal": g.get("principal"),
        "csrf_token": g.get("csrf_token", ""),
        "now": clock.now(),
        "isoformat": clock.isoformat,
        "portal_nav": PORTAL_NAV,
        "human_delta": human_delta,
    }


def human_delta(seconds: float) -> str:
    """A short duration for people: "45 s", "12 min", "3 h 5 min", "2 d"."""
    seconds = abs(int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d"


@bp.get("/")
def home() -> Response:
    return go(url_for("portal.approvals"), 302)


@bp.get("/login")
def login() -> Response:
    return render(
        "portal/login.html", next=_safe_next(request.args.get("next")), errors={}, email=""
    )


@bp.post("/login")
def login_submit() -> Response:
    form = {k: request.form.get(k, "") for k in ("email", "password")}
    target = _safe_next(request.form.get("next"))
    try:
        data = LoginSchema().load(form)
        user = users.authenticate(data["email"], data["password"])
    except ma.ValidationError as exc:
        return render(
            "portal/login.html", 422, next=target, errors=exc.messages, email=form["email"]
        )
    except Unauthorized as exc:
        return render(
            "portal/login.html",
            401,
            next=target,
            errors={"_form": [exc.detail]},
            email=form["email"],
        )
    if not any(r in PORTAL_ROLES for r in user.roles):
        return render(
            "portal/login.html",
            403,
            next=target,
            email=form["email"],
            errors={"_form": ["Only admins and reviewers may use the portal."]},
        )
    token, _ = issue_token(user.id, user.tenant_id, user.roles)
    resp = go(target)
    set_access_cookies(resp, token)
    return resp


@bp.post("/logout")
def logout() -> Response:
    resp = go(url_for("portal.login"))
    unset_jwt_cookies(resp)
    return resp
