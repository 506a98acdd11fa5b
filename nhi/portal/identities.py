"""Inventory page: every identity of the tenant, with live search."""

from __future__ import annotations

import uuid

import marshmallow as ma
from flask import Response, abort, g, request

from nhi.errors import Conflict, NotFound
from nhi.portal.session import PORTAL_NAV, bp, is_fragment_request, render
from nhi.schemas.common import ReasonSchema
from nhi.schemas.identities import AllIdentitiesListArgs
from nhi.services import identities as svc

PORTAL_NAV.append(("portal.identities", "Inventory"))


@bp.get("/identities")
def identities() -> Response:
    try:
        args = AllIdentitiesListArgs().load({k: v for k, v in request.args.items() if v != ""})
    except ma.ValidationError as exc:
        return render("portal/error.html", 422, message=f"Invalid filter: {exc.messages}")
    rows, total = svc.list_identities(
        g.principal.tenant_id,
        svc.IdentityFilters(
            nhi_type=args.get("nhi_type"),
            status=args.get("status"),
            risk_level=args.get("risk_level"),
            search=args.get("search"),
        ),
        limit=args["limit"],
        offset=args["offset"],
    )
    template = (
        "portal/identities/_table.html"
        if is_fragment_request()
        else ("portal/identities/index.html")
    )
    return render(template, rows=rows, total=total, args=args)


def _row(identity_id: uuid.UUID, status: int = 200, error: str | None = None) -> Response:
    row = svc.get_identity(g.principal.tenant_id, identity_id)
    return render("portal/identities/_row.html", status, row=row, error=error)


@bp.post("/identities/<uuid:identity_id>/<any(suspend, reactivate):verb>")
def lifecycle(identity_id: uuid.UUID, verb: str) -> Response:
    """Suspend or reactivate from the inventory: admins only, as in the API."""
    if not g.principal.has_role("admin"):
        return render("portal/error.html", 403, message="Only admins may suspend or reactivate.")
    try:
        data = ReasonSchema().load({"reason": request.form.get("reason", "")})
        identity = svc.get_identity(g.principal.tenant_id, identity_id)
        action = svc.suspend if verb == "suspend" else svc.reactivate
        action(g.principal, identity.nhi_type, identity_id, data["reason"])
    except ma.ValidationError:
        return _row(identity_id, 422, "A reason is required.")
    except NotFound:
        abort(404)
    except Conflict as exc:
        return _row(identity_id, 409, exc.detail)
    return _row(identity_id)
