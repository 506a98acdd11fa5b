"""An agent's activity: outcomes of its decisions (one per decision) and its audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from nhi import clock
from nhi.errors import Conflict, NotFound
from nhi.extensions import db
from nhi.models.audit import AuditEvent
from nhi.models.outcomes import DecisionOutcome
from nhi.principal import Principal
from nhi.services import audit
from nhi.services.identities import get_identity


def record_outcome(
    actor: Principal,
    agent_id: uuid.UUID,
    decision_id: uuid.UUID,
    status: str,
    detail: str | None,
) -> DecisionOutcome:
    """Store the outcome of one of the agent's decisions.

    Raises NotFound (agent, or no such decision of this agent), Conflict (already reported).
    """
    get_identity(actor.tenant_id, agent_id, "ai_agent")
    decision = db.session.execute(
        sa.select(AuditEvent.resource, AuditEvent.action, AuditEvent.decision)
        .where(
            AuditEvent.tenant_id == actor.tenant_id,
            AuditEvent.decision_id == decision_id,
            AuditEvent.nhi_id == agent_id,
            AuditEvent.event_type == "agent.authorize",
        )
        .limit(1)
    ).first()
    if decision is None:
        raise NotFound(f"No decision {decision_id} for agent {agent_id}.")
    if db.session.get(DecisionOutcome, decision_id) is not None:
        raise _already(decision_id)
    now = clock.now()
    outcome = DecisionOutcome(
        decision_id=decision_id,
        tenant_id=actor.tenant_id,
        agent_id=agent_id,
        status=status,
        detail=detail,
        reported_by=actor.sub,
        reported_at=now,
    )
    db.session.add(outcome)
    audit.record(
        actor,
        "agent.outcome",
        nhi_id=agent_id,
        resource=decision.resource,
        action=decision.action,
        decision_id=decision_id,
        reason=detail,
        details={"status": status, "decision": decision.decision},
    )
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise _already(decision_id) from exc
    return outcome


def _already(decision_id: uuid.UUID) -> Conflict:
    return Conflict(f"The outcome of decision {decision_id} was already reported.")


def agent_audit(
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    *,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEvent], int]:
    """The live agent's audit trail, newest first. Raises NotFound for unknown agents."""
    get_identity(tenant_id, agent_id, "ai_agent")
    return audit.list_events(
        tenant_id,
        nhi_id=agent_id,
        event_type=event_type,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
