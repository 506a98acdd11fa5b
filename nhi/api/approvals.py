"""HITL approvals: reviewers list and decide; agents poll the status of their own requests."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from nhi.auth import current_principal, require
from nhi.schemas.approvals import (
    ApprovalListArgs,
    ApprovalPageSchema,
    ApprovalSchema,
    ApprovalStatusSchema,
    ApproveSchema,
    DenySchema,
    StatusArgs,
)
from nhi.schemas.common import page
from nhi.services import approval_decisions as svc
from nhi.services.approval_decisions import ApprovalView

blp = Blueprint("approvals", __name__, url_prefix="/nhi/approvals", description="HITL approvals")


@blp.get("")
@require("admin", "reviewer")
@blp.arguments(ApprovalListArgs, location="query")
@blp.response(200, ApprovalPageSchema)
def list_approvals(args: dict[str, Any]) -> dict[str, Any]:
    """Approval requests of the tenant, newest first (filters: status, agent_id)."""
    rows, total = svc.list_approvals(
        current_principal().tenant_id,
        status=args.get("status"),
        agent_id=args.get("agent_id"),
        limit=args["limit"],
        offset=args["offset"],
    )
    return page(rows, total, args)


@blp.get("/<uuid:approval_id>")
@require("admin", "reviewer")
@blp.response(200, ApprovalSchema)
def get_approval(approval_id: uuid.UUID) -> ApprovalView:
    """One approval request with its exact parameters and context."""
    return svc.get_approval(current_principal().tenant_id, approval_id)


@blp.post("/<uuid:approval_id>/approve")
@require("admin", "reviewer")
@blp.arguments(ApproveSchema)
@blp.response(200, ApprovalSchema)
def approve(data: dict[str, Any], approval_id: uuid.UUID) -> ApprovalView:
    """Approve: the agent's next matching authorize call is allowed once, under the
    conditions given (max_rows may only narrow; usable for expires_in_minutes, default 60)."""
    return svc.approve(
        current_principal(),
        approval_id,
        reason=data.get("reason"),
        conditions=data.get("conditions"),
    )


@blp.post("/<uuid:approval_id>/deny")
@require("admin", "reviewer")
@blp.arguments(DenySchema)
@blp.response(200, ApprovalSchema)
def deny(data: dict[str, Any], approval_id: uuid.UUID) -> ApprovalView:
    """Deny with a reason the agent sees when it polls."""
    return svc.deny(current_principal(), approval_id, reason=data["reason"])


@blp.get("/<uuid:approval_id>/status")
@blp.arguments(StatusArgs, location="query")
@blp.response(200, ApprovalStatusSchema)
def status(args: dict[str, Any], approval_id: uuid.UUID) -> ApprovalView:
    """Poll a request's status; ``?wait=N`` (0-30 s) holds the request until the status
    changes. Admins, reviewers, or the requesting agent's own token."""
    if args["wait"]:
        return svc.wait_for_decision(current_principal(), approval_id, args["wait"])
    return svc.read_status(current_principal(), approval_id)
