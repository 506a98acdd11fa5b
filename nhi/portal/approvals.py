"""The approvals queue, the decision forms and the history of decisions."""

from __future__ import annotations

import re
import uuid
from typing import Any

import marshmallow as ma
from flask import Response, abort, g, request

from nhi.errors import Conflict, DomainError, ValidationFailed
from nhi.portal.session import PORTAL_NAV, bp, is_fragment_request, render
from nhi.schemas.approvals import ApprovalListArgs, ApproveSchema, DenySchema
from nhi.services import approval_decisions as svc
from nhi.services import identities

PORTAL_NAV[0:0] = [("portal.approvals", "Approvals"), ("portal.history", "History")]
QUEUE_SIZE = 50
_INT = re.compile(r"^-?\d+$")


def _number(value: str) -> int | str:
    value = value.strip()
    return int(value) if _INT.match(value) else value


def approve_input(form: Any) -> dict[str, Any]:
    """Form fields → the API's approve body (empty fields are simply not given)."""
    data: dict[str, Any] = {}
    if form.get("reason", "").strip():
        data["reason"] = form["reason"]
    conditions = {
        key: _number(form[key]) for key in ("max_rows", "expires_in_minutes") if form.get(key)
    }
    if conditions:
        data["conditions"] = conditions
    return data


def _card(view: svc.ApprovalView, status: int = 200, **extra: Any) -> Response:
    return render("portal/approvals/_card.html", status, a=view, **extra)


def _decided_card(view: svc.ApprovalView, message: str) -> Response:
    resp = render("portal/approvals/_decided.html", a=view, message=message)
    resp.headers["HX-Trigger"] = "approvals-changed"
    return resp


@bp.get("/approvals")
def approvals() -> Response:
    rows, total = svc.list_approvals(
        g.principal.tenant_id, status="pending", limit=QUEUE_SIZE, offset=0
    )
    return render("portal/approvals/queue.html", rows=rows, total=total, me=g.principal.sub)


@bp.get("/approvals/count")
def approvals_count() -> Response:
    count = svc.count_pending(g.principal.tenant_id)
    return render("portal/approvals/_count.html", count=count)


@bp.get("/approvals/updates")
def approvals_updates() -> Response:
    """What changed since the page rendered: new pending cards are prepended; cards decided or
    expired elsewhere are replaced out-of-band by a note saying so. 204 when nothing changed."""
    shown: list[uuid.UUID] = []
    for raw in request.args.getlist("shown"):
        try:
            shown.append(uuid.UUID(raw))
        except ValueError:
            abort(400)
    rows, total = svc.list_approvals(
        g.principal.tenant_id, status="pending", limit=QUEUE_SIZE, offset=0
    )
    pending_ids = {r.approval.id for r in rows}
    new = [r for r in rows if r.approval.id not in set(shown)]
    gone = svc.get_approvals(g.principal.tenant_id, [i for i in shown if i not in pending_ids])
    if not new and not gone:
        return Response(status=204, headers={"Vary": "HX-Request"})
    return render(
        "portal/approvals/_updates.html", new=new, gone=gone, total=total, me=g.principal.sub
    )


def _decide(approval_id: uuid.UUID, verb: str) -> Response:
    principal = g.principal
    try:
        if verb == "approve":
            data = ApproveSchema().load(approve_input(request.form))
            view = svc.approve(
                principal,
                approval_id,
                reason=data.get("reason"),
                conditions=data.get("conditions"),
            )
        else:
            data = DenySchema().load({"reason": request.form.get("reason", "")})
            view = svc.deny(principal, approval_id, reason=data["reason"])
    except ma.ValidationError as exc:
        return _card(
            svc.get_approval(principal.tenant_id, approval_id),
            422,
            errors={verb: exc.messages},
            form=request.form,
            me=principal.sub,
        )
    except ValidationFailed as exc:
        return _card(
            svc.get_approval(principal.tenant_id, approval_id),
            422,
            errors={verb: exc.errors or {"_form": [exc.detail]}},
            form=request.form,
            me=principal.sub,
        )
    except Conflict:
        # Someone else was faster (or it expired): say so instead of failing silently.
        current = svc.get_approval(principal.tenant_id, approval_id)
        resp = render("portal/approvals/_decided.html", 409, a=current, message=None)
        resp.headers["HX-Trigger"] = "approvals-changed"
        return resp
    except DomainError as exc:
        if exc.status == 404:
            abort(404)
        return _card(
            svc.get_approval(principal.tenant_id, approval_id),
            exc.status,
            errors={verb: {"_form": [exc.detail]}},
            form=request.form,
            me=principal.sub,
        )
    label = "Approved" if verb == "approve" else "Denied"
    return _decided_card(view, f"{label} by you.")


@bp.post("/approvals/<uuid:approval_id>/approve")
def approve(approval_id: uuid.UUID) -> Response:
    return _decide(approval_id, "approve")


@bp.post("/approvals/<uuid:approval_id>/deny")
def deny(approval_id: uuid.UUID) -> Response:
    return _decide(approval_id, "deny")


@bp.get("/approvals/history")
def history() -> Response:
    try:
        args = ApprovalListArgs().load({k: v for k, v in request.args.items() if v != ""})
    except ma.ValidationError as exc:
        return render("portal/error.html", 422, message=f"Invalid filter: {exc.messages}")
    if args.get("status") == "pending":
        args.pop("status")
    rows, total = svc.list_approvals(
        g.principal.tenant_id,
        status=args.get("status"),
        agent_id=args.get("agent_id"),
        decided_only=True,
        limit=args["limit"],
        offset=args["offset"],
    )
    agents, _ = identities.list_identities(
        g.principal.tenant_id,
        identities.IdentityFilters(nhi_type="ai_agent"),
        limit=100,
        offset=0,
    )
    template = (
        "portal/approvals/_history_table.html"
        if is_fragment_request()
        else "portal/approvals/history.html"
    )
    return render(template, rows=rows, total=total, args=args, agents=agents)
