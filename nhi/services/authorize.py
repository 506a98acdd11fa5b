"""``POST /nhi/agents/{id}/authorize``: the hot path (DESIGN.md §7).

Per call: one read of the agent row (none when the agent calls with its own token, whose check
already read it; tool calls also read the tool-catalogue version), the pure decision on cached
compiled inputs, then a short write phase: the rate limit (one Redis script, or one statement on
PostgreSQL and three on SQLite), one audit insert, and ``last_activity_at`` at most once a
minute, committed together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis import Redis

from nhi import clock
from nhi.errors import NotFound, RateLimited, ValidationFailed
from nhi.extensions import db
from nhi.models.identities import Identity
from nhi.principal import Principal
from nhi.services import approvals, audit, policy_cache, ratelimit
from nhi.services.decision import AuthzRequest, Decision, evaluate, inactive_decision
from nhi.services.policy import check_action, parse_request_resource
from nhi.services.write_queue import serialized_writes

ACTIVITY_RESOLUTION = timedelta(minutes=1)
AUDIT_DECISION = {"allow": "allowed", "deny": "denied", "approval": "requires_approval"}


@dataclass(frozen=True)
class AuthorizeResult:
    authorized: bool
    requires_approval: bool
    reason: str
    decision_id: uuid.UUID
    approval_id: uuid.UUID | None
    permission_id: uuid.UUID | None
    conditions: dict[str, Any] = field(default_factory=dict)


def parse_request(data: dict[str, Any]) -> AuthzRequest:
    """Either ``{resource, action}`` or ``{tool, parameters?}``, plus ``context``. Raises 422."""
    context = data.get("context") or {}
    tool = data.get("tool")
    if tool is not None:
        if "resource" in data or "action" in data:
            raise ValidationFailed(
                "Send either tool (and parameters) or resource and action, not both.",
                errors={"tool": ["cannot be combined with resource/action"]},
            )
        resource, action, parameters = f"tool:{tool}", "invoke", data.get("parameters") or {}
    else:
        missing = [k for k in ("resource", "action") if not data.get(k)]
        if missing:
            raise ValidationFailed(
                "Send resource and action, or tool.",
                errors={k: ["required unless tool is given"] for k in missing},
            )
        if "parameters" in data:
            raise ValidationFailed(
                "parameters belong to a tool call.",
                errors={"parameters": ["only with tool"]},
            )
        resource, action, parameters = data["resource"], data["action"], None
    try:
        kind, name = parse_request_resource(resource)
    except ValueError as exc:
        raise ValidationFailed(
            f"resource {resource!r} is malformed: {exc}.",
            errors={"tool" if tool is not None else "resource": [str(exc)]},
        ) from exc
    try:
        check_action(action, pattern=False)
    except ValueError as exc:
        raise ValidationFailed(f"action {action!r}: {exc}.", errors={"action": [str(exc)]}) from exc
    if tool is None and kind == "tool" and action == "invoke":
        tool, parameters = name, {}  # the same tool call, so schema and approval still apply
    return AuthzRequest(resource, kind, name, action, tool, parameters, context)


def authorize(
    actor: Principal,
    agent_id: uuid.UUID,
    data: dict[str, Any],
    *,
    redis: Redis | None,
    approval_ttl: timedelta,
    loaded: Identity | None = None,
) -> AuthorizeResult:
    """Decide whether the agent may act (API.md decision order) and audit the decision.

    Raises ValidationFailed (malformed request), NotFound (rule 1), RateLimited (rule 3; the
    denial is audited and committed first). ``loaded`` is the caller's own identity row when
    it was read earlier in the request (agent tokens), which saves reading it again.
    """
    req = parse_request(data)
    now = clock.now()
    agent = policy_cache.load_agent(actor.tenant_id, agent_id, loaded)
    if agent is None:
        raise NotFound(f"No agent with id {agent_id}.")
    decision_id = uuid.uuid4()
    status = agent.effective_status(now)
    decision = inactive_decision(status)
    if decision is None:
        # Reads and the pure decision first, so that the write phase below is short.
        policy = policy_cache.policy_for(agent)
        tool = policy_cache.tool_for(agent, req.tool) if req.tool is not None else None
        decision = evaluate(status, policy, tool, req, now)
        limited = True
    else:
        limited = False
    approval_id = None
    with serialized_writes():
        if limited:  # rule 3 comes before rules 4-8
            limit = ratelimit.hit(
                f"agent:{agent.id}", agent.max_actions_per_minute, now, redis=redis
            )
            if not limit.allowed:
                reason = (
                    f"rate limit: more than {agent.max_actions_per_minute} actions in the "
                    f"trailing minute; retry after {limit.retry_after} s"
                )
                denied = Decision("deny", reason, "rate_limit")
                _record(actor, agent.id, req, denied, decision_id, None)
                _touch(agent.id, agent.last_activity_at, now)
                db.session.commit()
                raise RateLimited(
                    reason, retry_after=limit.retry_after, extra={"decision_id": str(decision_id)}
                )
        if decision.outcome == "approval":
            decision, approval_id = approvals.resolve(
                actor, agent.id, req, decision, decision_id, now, approval_ttl
            )
        _record(actor, agent.id, req, decision, decision_id, approval_id)
        _touch(agent.id, agent.last_activity_at, now)
        db.session.commit()
    return AuthorizeResult(
        authorized=decision.outcome == "allow",
        requires_approval=decision.outcome == "approval",
        reason=decision.reason,
        decision_id=decision_id,
        approval_id=approval_id,
        permission_id=decision.permission_id,
        conditions=dict(decision.conditions),
    )


def _record(
    actor: Principal,
    agent_id: uuid.UUID,
    req: AuthzRequest,
    decision: Decision,
    decision_id: uuid.UUID,
    approval_id: uuid.UUID | None,
) -> None:
    details: dict[str, Any] = {"rule": decision.rule, "context": dict(req.context)}
    if req.tool is not None:
        details["tool"] = req.tool
        details["parameters"] = req.parameters
    if decision.permission_id is not None:
        details["permission_id"] = decision.permission_id
    if decision.conditions:
        details["conditions"] = dict(decision.conditions)
    audit.record(
        actor,
        "agent.authorize",
        nhi_id=agent_id,
        resource=req.resource,
        action=req.action,
        decision=AUDIT_DECISION[decision.outcome],
        reason=decision.reason,
        decision_id=decision_id,
        approval_id=approval_id,
        details=details,
    )


def _touch(agent_id: uuid.UUID, last: datetime | None, now: datetime) -> None:
    """``last_activity_at`` at most once a minute per agent (not a version change)."""
    if last is not None and last > now - ACTIVITY_RESOLUTION:
        return
    db.session.execute(
        sa.update(Identity)
        .where(
            Identity.id == agent_id,
            sa.or_(
                Identity.last_activity_at.is_(None),
                Identity.last_activity_at <= now - ACTIVITY_RESOLUTION,
            ),
        )
        .values(last_activity_at=now, updated_at=Identity.updated_at)
        .execution_options(synchronize_session=False)
    )
