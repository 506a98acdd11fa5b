"""Approval records on the authorize side (rule 7): use an approved one, reuse a pending one,
or open a new request. Deciding approvals is the HITL API's job, not this module's."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from nhi.extensions import db
from nhi.models.approvals import Approval
from nhi.models.identities import Identity
from nhi.principal import Principal
from nhi.serialization import jsonable
from nhi.services import audit, events
from nhi.services.approval_decisions import announce_expired, event_payload
from nhi.services.decision import AuthzRequest, Decision, merge_approval_conditions


def params_hash(parameters: Any) -> str:
    """SHA-256 of the canonical JSON of a request's parameters (what approvals match on)."""
    canonical = json.dumps(jsonable(parameters), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _key(tenant_id: uuid.UUID, agent_id: uuid.UUID, req: AuthzRequest, digest: str) -> list[Any]:
    return [
        Approval.tenant_id == tenant_id,
        Approval.agent_id == agent_id,
        Approval.resource == req.resource,
        Approval.action == req.action,
        Approval.params_hash == digest,
    ]


def resolve(
    actor: Principal,
    agent_id: uuid.UUID,
    req: AuthzRequest,
    decision: Decision,
    decision_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
) -> tuple[Decision, uuid.UUID]:
    """Rule 7 for a decision whose outcome is ``approval``; returns the final decision and the
    approval it used, matched or created. Runs inside the caller's transaction."""
    digest = params_hash(req.parameters)
    key = _key(actor.tenant_id, agent_id, req, digest)
    approved = db.session.execute(
        sa.select(Approval)
        .where(*key, Approval.status == "approved", Approval.used_at.is_(None))
        .where(Approval.expires_at > now)
        .order_by(Approval.decided_at, Approval.id)
        .limit(1)
    ).scalar_one_or_none()
    if approved is not None:
        merged, broken = merge_approval_conditions(decision, approved.conditions or {}, req)
        if broken is not None:
            return (
                Decision("deny", broken, "approval_condition", decision.permission_id, merged),
                approved.id,
            )
        used = db.session.execute(
            sa.update(Approval)
            .where(
                Approval.id == approved.id,
                Approval.status == "approved",
                Approval.used_at.is_(None),
            )
            .values(used_at=now, used_decision_id=decision_id)
            .execution_options(synchronize_session=False)
        )
        if used.rowcount == 1:  # type: ignore[attr-defined]
            reason = (
                f"approved by {approved.decided_by} (approval {approved.id}); "
                "single use, now used up"
            )
            return (
                Decision("allow", reason, "approved", decision.permission_id, merged),
                approved.id,
            )
        # Another call used it a moment ago: this one needs a new approval.

    _expire_stale(actor, key, now)
    pending = _pending(key)
    if pending is not None:
        reason = f"{decision.approval_source}: waiting for approval {pending.id}"
        return _needs(decision, reason), pending.id
    approval = _create(actor, agent_id, req, decision, decision_id, digest, now, ttl, key)
    if approval.decision_id != decision_id:  # a concurrent call opened it first
        reason = f"{decision.approval_source}: waiting for approval {approval.id}"
    else:
        reason = f"{decision.approval_source}: approval {approval.id} requested"
    return _needs(decision, reason), approval.id


def _needs(decision: Decision, reason: str) -> Decision:
    return Decision(
        "approval",
        reason,
        "requires_approval",
        decision.permission_id,
        decision.conditions,
        decision.approval_source,
    )


def _pending(key: list[Any]) -> Approval | None:
    return db.session.execute(
        sa.select(Approval).where(*key, Approval.status == "pending")
    ).scalar_one_or_none()


def _expire_stale(actor: Principal, key: list[Any], now: datetime) -> None:
    """A pending request past its time reads as expired; persist that before opening another."""
    expired = db.session.execute(
        sa.update(Approval)
        .where(*key, Approval.status == "pending", Approval.expires_at <= now)
        .values(status="expired")
        .returning(Approval.id, Approval.tenant_id)
        .execution_options(synchronize_session=False)
    ).all()
    announce_expired(expired)


def _create(
    actor: Principal,
    agent_id: uuid.UUID,
    req: AuthzRequest,
    decision: Decision,
    decision_id: uuid.UUID,
    digest: str,
    now: datetime,
    ttl: timedelta,
    key: list[Any],
) -> Approval:
    approval = Approval(
        id=uuid.uuid4(),
        tenant_id=actor.tenant_id,
        agent_id=agent_id,
        tool=req.tool,
        resource=req.resource,
        action=req.action,
        parameters=jsonable(req.parameters),
        context=jsonable(dict(req.context)),
        params_hash=digest,
        status="pending",
        requested_by=actor.sub,
        requested_at=now,
        expires_at=now + ttl,
        conditions={},
        decision_id=decision_id,
        permission_id=decision.permission_id,
    )
    if db.session.get_bind().dialect.name == "postgresql":
        # The partial unique index allows one pending request per key; a concurrent twin loses
        # here and reuses the winner's. (SQLite serialises writers, so it cannot race.)
        try:
            with db.session.begin_nested():
                db.session.add(approval)
        except IntegrityError:
            existing = _pending(key)
            if existing is not None:
                return existing
            raise
    else:
        db.session.add(approval)
        db.session.flush()
    audit.record(
        actor,
        "approval.requested",
        nhi_id=agent_id,
        resource=req.resource,
        action=req.action,
        decision_id=decision_id,
        approval_id=approval.id,
        reason=decision.approval_source,
        details={"tool": req.tool, "parameters": req.parameters, "context": dict(req.context)},
    )
    agent = db.session.get(Identity, agent_id)
    events.emit(
        actor.tenant_id,
        "approval.requested",
        event_payload(approval, status="pending", agent_name=agent.name if agent else None),
    )
    return approval
