"""Inventory page: every identity of the tenant, with live search."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, g, request

from nhi.portal.session import PORTAL_NAV, bp, is_fragment_request, render
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
