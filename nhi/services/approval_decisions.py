"""Human decisions on approval requests: list, read, approve, deny, poll, expire.

The authorize side (opening, reusing and using up requests) lives in ``services.approvals``.
Deciding is one conditional ``UPDATE ... WHERE status = 'pending' AND expires_at > now``, so of
two reviewers racing on one request exactly one wins; the other gets a 409.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from nhi import clock
from nhi.errors import Conflict, Forbidden, NotFound, ValidationFailed
from nhi.extensions import db
from nhi.models.approvals import Approval, effective_status_expr
from nhi.models.identities import Identity
from nhi.models.permissions import AgentPermission
from nhi.models.tools import Tool
from nhi.principal import Principal
from nhi.services import audit, events

DECIDERS = ("admin", "reviewer")
DEFAULT_USE_MINUTES = 60
POLL_INTERVAL_SECONDS = 0.2


@dataclass(frozen=True)
class ApprovalView:
    """An approval with what a reviewer needs beside it (agent name, owner, risk)."""

    approval: Approval
    agent_name: str | None
    agent_owner_id: uuid.UUID | None
    agent_risk_level: str | None
    status: str
    tool_risk_level: str | None = None

    def __getattr__(self, name: str) -> Any:  # schema dumping reads approval fields through
        return getattr(self.approval, name)


def _select_views(now: datetime) -> Any:
    return (
        sa.select(
            Approval,
            Identity.name,
            Identity.owner_id,
            Identity.effective_risk_level,
            effective_status_expr(now),
            Tool.risk_level,
        )
        .outerjoin(Identity, Identity.id == Approval.agent_id)
        .outerjoin(Tool, sa.and_(Tool.tenant_id == Approval.tenant_id, Tool.name == Approval.tool))
        # Decisions are conditional UPDATEs that bypass the identity map: always read the row.
        .execution_options(populate_existing=True)
    )


def _view(row: Any) -> ApprovalView:
    return ApprovalView(row[0], row[1], row[2], row[3], row[4], row[5])


def list_approvals(
    tenant_id: uuid.UUID,
    *,
    status: str | None = None,
    agent_id: uuid.UUID | None = None,
    decided_only: bool = False,
    limit: int,
    offset: int,
) -> tuple[list[ApprovalView], int]:
    """Newest first. ``status`` filters on the status as read now (expiry included);
    ``decided_only`` keeps approved, denied and expired requests (the history)."""
    now = clock.now()
    eff = effective_status_expr(now)
    conds: list[sa.ColumnElement[bool]] = [Approval.tenant_id == tenant_id]
    if status:
        conds.append(eff == status)
    elif decided_only:
        conds.append(eff != "pending")
    if agent_id:
        conds.append(Approval.agent_id == agent_id)
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(Approval).where(*conds)
    ).scalar_one()
    order = (
        (sa.func.coalesce(Approval.decided_at, Approval.expires_at).desc(), Approval.id.desc())
        if decided_only
        else (Approval.requested_at.desc(), Approval.id.desc())
    )
    rows = db.session.execute(
        _select_views(now).where(*conds).order_by(*order).limit(limit).offset(offset)
    ).all()
    return [_view(r) for r in rows], total


def count_pending(tenant_id: uuid.UUID) -> int:
    now = clock.now()
    return db.session.execute(
        sa.select(sa.func.count())
        .select_from(Approval)
        .where(Approval.tenant_id == tenant_id, effective_status_expr(now) == "pending")
    ).scalar_one()


def get_approval(tenant_id: uuid.UUID, approval_id: uuid.UUID) -> ApprovalView:
    row = db.session.execute(
        _select_views(clock.now()).where(
            Approval.id == approval_id, Approval.tenant_id == tenant_id
        )
    ).first()
    if row is None:
        raise NotFound(f"No approval request with id {approval_id}.")
    return _view(row)


def read_status(actor: Principal, approval_id: uuid.UUID) -> ApprovalView:
    """Deciders read any request of the tenant; an NHI token only the requests of its own
    identity."""
    view = get_approval(actor.tenant_id, approval_id)
    if actor.is_nhi:
        if view.approval.agent_id != actor.nhi_id:
            raise Forbidden("An agent may read only the status of its own approval requests.")
    elif not actor.has_role(*DECIDERS):
        raise Forbidden("Reading approvals requires the role 'admin' or 'reviewer'.")
    return view


def wait_for_decision(
    actor: Principal,
    approval_id: uuid.UUID,
    wait_seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> ApprovalView:
    """Long poll: return as soon as the request is no longer pending, or after ``wait_seconds``.

    The session is released between looks, so a waiting poll holds no database connection.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        view = read_status(actor, approval_id)
        if view.status != "pending" or time.monotonic() >= deadline:
            return view
        db.session.remove()
        sleep(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))


def _check_decider(actor: Principal, approval: Approval) -> None:
    if actor.is_nhi or not actor.has_role(*DECIDERS):
        raise Forbidden("Deciding approvals requires a human with the role 'admin' or 'reviewer'.")
    if actor.sub == approval.requested_by:
        raise Forbidden("Nobody approves or denies their own request.")


def _permission_cap(approval: Approval) -> int | None:
    if approval.permission_id is None:
        return None
    perm = db.session.get(AgentPermission, approval.permission_id)
    if perm is None:
        return None
    cap = (perm.conditions or {}).get("max_rows")
    return cap if isinstance(cap, int) else None


def _decide(
    actor: Principal, approval_id: uuid.UUID, verb: str, values: dict[str, Any], now: datetime
) -> ApprovalView:
    result = db.session.execute(
        sa.update(Approval)
        .where(
            Approval.id == approval_id,
            Approval.tenant_id == actor.tenant_id,
            Approval.status == "pending",
            Approval.expires_at > now,
        )
        .values(**values, decided_by=actor.sub, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        current = get_approval(actor.tenant_id, approval_id)
        if current.status == "expired" and current.approval.decided_at is None:
            detail = f"Cannot {verb}: the request expired at {clock.isoformat(current.expires_at)}."
        else:
            detail = (
                f"Cannot {verb}: the request was already {current.status} by "
                f"{current.approval.decided_by} at {clock.isoformat(current.approval.decided_at)}."
            )
        raise Conflict(
            detail,
            extra={
                "current_status": current.status,
                "decided_by": current.approval.decided_by,
                "decided_at": clock.isoformat(current.approval.decided_at),
            },
        )
    return get_approval(actor.tenant_id, approval_id)


def approve(
    actor: Principal,
    approval_id: uuid.UUID,
    *,
    reason: str | None,
    conditions: dict[str, Any] | None,
) -> ApprovalView:
    """Approve a pending request. Conditions only narrow: ``max_rows`` above the permission's
    cap → ValidationFailed. Raises NotFound, Forbidden, Conflict (not pending)."""
    current = get_approval(actor.tenant_id, approval_id)
    _check_decider(actor, current.approval)
    conds = dict(conditions or {})
    cap = _permission_cap(current.approval)
    if "max_rows" in conds and cap is not None and conds["max_rows"] > cap:
        raise ValidationFailed(
            f"max_rows {conds['max_rows']} would widen the permission's max_rows {cap}; "
            "approval conditions may only narrow it.",
            errors={"conditions": {"max_rows": [f"must be at most {cap}"]}},
        )
    conds.setdefault("expires_in_minutes", DEFAULT_USE_MINUTES)
    now = clock.now()
    view = _decide(
        actor,
        approval_id,
        "approve",
        {
            "status": "approved",
            "reason": reason,
            "conditions": conds,
            "expires_at": now + timedelta(minutes=conds["expires_in_minutes"]),
        },
        now,
    )
    _record(actor, view, "approval.approved")
    db.session.commit()
    return view


def deny(actor: Principal, approval_id: uuid.UUID, *, reason: str) -> ApprovalView:
    """Deny a pending request with a reason the agent sees. Raises as ``approve``."""
    current = get_approval(actor.tenant_id, approval_id)
    _check_decider(actor, current.approval)
    view = _decide(actor, approval_id, "deny", {"status": "denied", "reason": reason}, clock.now())
    _record(actor, view, "approval.denied")
    db.session.commit()
    return view


def event_payload(approval: Approval, *, status: str, agent_name: str | None) -> dict[str, Any]:
    """The ``data`` of every ``approval.*`` event (one shape for all four types)."""
    return {
        "id": approval.id,
        "agent_id": approval.agent_id,
        "agent_name": agent_name,
        "tool": approval.tool,
        "resource": approval.resource,
        "action": approval.action,
        "status": status,
        "requested_by": approval.requested_by,
        "requested_at": approval.requested_at,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at,
        "reason": approval.reason,
        "conditions": approval.conditions,
        "expires_at": approval.expires_at,
    }


def _payload(view: ApprovalView) -> dict[str, Any]:
    return event_payload(view.approval, status=view.status, agent_name=view.agent_name)


def _record(actor: Principal, view: ApprovalView, event_type: str) -> None:
    a = view.approval
    audit.record(
        actor,
        event_type,
        nhi_id=a.agent_id,
        resource=a.resource,
        action=a.action,
        decision=a.status,
        reason=a.reason,
        approval_id=a.id,
        details={"conditions": a.conditions, "parameters": a.parameters},
    )
    events.emit(actor.tenant_id, event_type, _payload(view))


def announce_expired(rows: Any) -> None:
    """Audit and emit ``approval.expired`` for ``(id, tenant_id)`` rows just flipped to expired,
    in the caller's transaction."""
    ids = [approval_id for approval_id, _tenant_id in rows]
    if not ids:
        return
    views = db.session.execute(_select_views(clock.now()).where(Approval.id.in_(ids))).all()
    for view in map(_view, views):
        a = view.approval
        audit.record(
            Principal.system(a.tenant_id),
            "approval.expired",
            nhi_id=a.agent_id,
            resource=a.resource,
            action=a.action,
            approval_id=a.id,
            reason="expired before it was decided"
            if a.decided_at is None
            else "approved but not used in time",
        )
        events.emit(a.tenant_id, "approval.expired", _payload(view))


def expire_due(now: datetime | None = None, batch: int = 500) -> int:
    """Persist the expiry that reads already report, audit it and emit ``approval.expired``.

    Idempotent and safe to run from several workers: each row flips once (conditional UPDATE).
    """
    now = now or clock.now()
    expired = 0
    while True:
        ids = (
            db.session.execute(
                sa.select(Approval.id)
                .where(
                    Approval.status.in_(("pending", "approved")),
                    Approval.used_at.is_(None),
                    Approval.expires_at <= now,
                )
                .order_by(Approval.expires_at, Approval.id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not ids:
            return expired
        rows = db.session.execute(
            sa.update(Approval)
            .where(
                Approval.id.in_(ids),
                Approval.status.in_(("pending", "approved")),
                Approval.used_at.is_(None),
                Approval.expires_at <= now,
            )
            .values(status="expired")
            .returning(Approval.id, Approval.tenant_id)
            .execution_options(synchronize_session=False)
        ).all()
        announce_expired(rows)
        db.session.commit()
        expired += len(rows)
        if len(ids) < batch:
            return expired


def get_approvals(tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[ApprovalView]:
    """Several requests of the tenant in one query (unknown ids are left out)."""
    if not ids:
        return []
    rows = db.session.execute(
        _select_views(clock.now()).where(Approval.tenant_id == tenant_id, Approval.id.in_(ids))
    ).all()
    return [_view(r) for r in rows]
