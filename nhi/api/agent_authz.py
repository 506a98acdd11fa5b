"""Agent permissions, the authorize decision, outcomes and the agent's audit trail."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app, g, url_for
from flask_smorest import Blueprint

from nhi.auth import current_principal, require
from nhi.jobs import redis_connection
from nhi.models.permissions import AgentPermission
from nhi.schemas.audit import AuditListArgs, AuditPageSchema
from nhi.schemas.authz import (
    AuthorizeSchema,
    DecisionSchema,
    OutcomeSchema,
    PermissionCreateSchema,
    PermissionListArgs,
    PermissionPageSchema,
    PermissionSchema,
)
from nhi.schemas.common import page
from nhi.services import agent_activity, permissions
from nhi.services import authorize as authz
from nhi.services.authorize import AuthorizeResult

blp = Blueprint(
    "agent_authz",
    __name__,
    url_prefix="/nhi/agents",
    description="Agent permissions, authorization and audit",
)


@blp.post("/<uuid:agent_id>/permissions")
@require("admin")
@blp.arguments(PermissionCreateSchema)
@blp.response(201, PermissionSchema)
def grant(data: dict[str, Any], agent_id: uuid.UUID) -> tuple[AgentPermission, int, dict[str, str]]:
    """Grant a permission (resource pattern, action, effect, conditions, expires_at)."""
    perm = permissions.grant(current_principal(), agent_id, data)
    location = url_for("agent_authz.get_permission", agent_id=agent_id, permission_id=perm.id)
    return perm, 201, {"Location": location}


@blp.get("/<uuid:agent_id>/permissions")
@require("*", nhi_self="agent_id")
@blp.arguments(PermissionListArgs, location="query")
@blp.response(200, PermissionPageSchema)
def list_permissions(args: dict[str, Any], agent_id: uuid.UUID) -> dict[str, Any]:
    """The agent's permissions, oldest first (filter: effect)."""
    rows, total = permissions.list_permissions(
        current_principal().tenant_id,
        agent_id,
        effect=args.get("effect"),
        limit=args["limit"],
        offset=args["offset"],
    )
    return page(rows, total, args)


@blp.get("/<uuid:agent_id>/permissions/<uuid:permission_id>")
@require("*", nhi_self="agent_id")
@blp.response(200, PermissionSchema)
def get_permission(agent_id: uuid.UUID, permission_id: uuid.UUID) -> AgentPermission:
    """One permission of the agent."""
    return permissions.get_permission(current_principal().tenant_id, agent_id, permission_id)


@blp.delete("/<uuid:agent_id>/permissions/<uuid:permission_id>")
@require("admin")
@blp.response(204)
def revoke(agent_id: uuid.UUID, permission_id: uuid.UUID) -> None:
    """Revoke a permission; the next authorize call in any process no longer sees it."""
    permissions.revoke(current_principal(), agent_id, permission_id)


@blp.post("/<uuid:agent_id>/authorize")
@require("admin", nhi_self="agent_id")
@blp.arguments(AuthorizeSchema)
@blp.response(200, DecisionSchema)
def authorize(data: dict[str, Any], agent_id: uuid.UUID) -> AuthorizeResult:
    """Decide whether the agent may act now; every decision is audited with its reason."""
    return authz.authorize(
        current_principal(),
        agent_id,
        data,
        redis=redis_connection(),
        approval_ttl=timedelta(seconds=int(current_app.config["APPROVAL_TTL_SECONDS"])),
        loaded=g.get("nhi_identity"),  # the agent's own row, read by the token check
    )


@blp.post("/<uuid:agent_id>/decisions/<uuid:decision_id>/outcome")
@require("admin", nhi_self="agent_id")
@blp.arguments(OutcomeSchema)
@blp.response(204)
def outcome(data: dict[str, Any], agent_id: uuid.UUID, decision_id: uuid.UUID) -> None:
    """Report how the action of a decision went (success or error)."""
    agent_activity.record_outcome(
        current_principal(), agent_id, decision_id, data["status"], data.get("detail")
    )


@blp.get("/<uuid:agent_id>/audit")
@require("*")
@blp.arguments(AuditListArgs, location="query")
@blp.response(200, AuditPageSchema)
def agent_audit(args: dict[str, Any], agent_id: uuid.UUID) -> dict[str, Any]:
    """The agent's audit trail, newest first (filters: event_type, since, until)."""
    rows, total = agent_activity.agent_audit(
        current_principal().tenant_id,
        agent_id,
        event_type=args.get("event_type"),
        since=args.get("since"),
        until=args.get("until"),
        limit=args["limit"],
        offset=args["offset"],
    )
    return page(rows, total, args)
