"""Agent permissions: grant, list, revoke. Every write bumps the agent's ``version`` so that the
per-process policy caches see it on the very next authorize call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from nhi import clock
from nhi.errors import NotFound, ValidationFailed
from nhi.extensions import db
from nhi.models.identities import Identity
from nhi.models.permissions import AgentPermission
from nhi.principal import Principal
from nhi.services import audit
from nhi.services.identities import get_identity
from nhi.services.policy import check_action, parse_resource_pattern, validate_conditions


def _bump_agent(agent_id: uuid.UUID) -> None:
    db.session.execute(
        sa.update(Identity)
        .where(Identity.id == agent_id)
        .values(version=Identity.version + 1, updated_at=Identity.updated_at)
        .execution_options(synchronize_session=False)
    )


def _validate(data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    try:
        parse_resource_pattern(data["resource"])
    except ValueError as exc:
        errors["resource"] = [str(exc)]
    try:
        check_action(data["action"], pattern=True)
    except ValueError as exc:
        errors["action"] = [str(exc)]
    cond_errors = validate_conditions(data.get("conditions") or {}, data.get("effect", "allow"))
    errors.update({f"conditions.{k}": v for k, v in cond_errors.items()})
    expires_at: datetime | None = data.get("expires_at")
    if expires_at is not None and expires_at <= clock.now():
        errors["expires_at"] = ["must be in the future"]
    if errors:
        first = next(iter(errors.items()))
        raise ValidationFailed(f"Invalid permission: {first[0]}: {first[1][0]}", errors=errors)


def snapshot(perm: AgentPermission) -> dict[str, Any]:
    return {
        "id": perm.id,
        "resource": perm.resource,
        "action": perm.action,
        "effect": perm.effect,
        "conditions": perm.conditions,
        "expires_at": perm.expires_at,
    }


def grant(actor: Principal, agent_id: uuid.UUID, data: dict[str, Any]) -> AgentPermission:
    """Grant a permission to an agent. Raises NotFound (agent), ValidationFailed."""
    get_identity(actor.tenant_id, agent_id, "ai_agent")
    _validate(data)
    perm = AgentPermission(
        id=uuid.uuid4(),
        tenant_id=actor.tenant_id,
        agent_id=agent_id,
        resource=data["resource"],
        action=data["action"],
        effect=data.get("effect", "allow"),
        conditions=dict(data.get("conditions") or {}),
        expires_at=data.get("expires_at"),
        granted_by=actor.sub,
        created_at=clock.now(),
    )
    db.session.add(perm)
    _bump_agent(agent_id)
    audit.record(
        actor,
        "permission.granted",
        nhi_id=agent_id,
        resource=perm.resource,
        action=perm.action,
        details={"permission": snapshot(perm)},
    )
    db.session.commit()
    return perm


def list_permissions(
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    *,
    effect: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AgentPermission], int]:
    """The agent's permissions, oldest first (expired ones included: they are still stored)."""
    get_identity(tenant_id, agent_id, "ai_agent")
    conds = [AgentPermission.tenant_id == tenant_id, AgentPermission.agent_id == agent_id]
    if effect:
        conds.append(AgentPermission.effect == effect)
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(AgentPermission).where(*conds)
    ).scalar_one()
    rows = db.session.execute(
        sa.select(AgentPermission)
        .where(*conds)
        .order_by(AgentPermission.created_at, AgentPermission.id)
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), total


def get_permission(
    tenant_id: uuid.UUID, agent_id: uuid.UUID, permission_id: uuid.UUID
) -> AgentPermission:
    """One permission of a live agent, or NotFound."""
    get_identity(tenant_id, agent_id, "ai_agent")
    perm = db.session.execute(
        sa.select(AgentPermission).where(
            AgentPermission.id == permission_id,
            AgentPermission.agent_id == agent_id,
            AgentPermission.tenant_id == tenant_id,
        )
    ).scalar_one_or_none()
    if perm is None:
        raise NotFound(f"No permission {permission_id} on agent {agent_id}.")
    return perm


def revoke(actor: Principal, agent_id: uuid.UUID, permission_id: uuid.UUID) -> None:
    """Delete the permission; the next authorize call in any process no longer sees it."""
    perm = get_permission(actor.tenant_id, agent_id, permission_id)
    data = snapshot(perm)
    result = db.session.execute(
        sa.delete(AgentPermission)
        .where(AgentPermission.id == permission_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise NotFound(f"No permission {permission_id} on agent {agent_id}.")
    _bump_agent(agent_id)
    audit.record(
        actor,
        "permission.revoked",
        nhi_id=agent_id,
        resource=data["resource"],
        action=data["action"],
        details={"permission": data},
    )
    db.session.commit()
