"""The authorize decision: a pure function of (agent status, policy, tool, request, now).

No I/O and no Flask: the service around it loads the inputs (through the per-process cache),
applies the rate limit between rule 2 and rule 4, and resolves approvals for rule 7.
Rules follow API.md "Decision order"; the first that applies decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from nhi.services.policy import CompiledPermission, CompiledTool, Policy

Outcome = Literal["allow", "deny", "approval"]
GRANTED = "Permission granted via direct assignment"


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """A parsed authorize request; ``tool`` is set for tool calls (resource ``tool:<name>``)."""

    resource: str
    kind: str
    name: str
    action: str
    tool: str | None = None
    parameters: Any = None
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int | None:
        rows = self.context.get("rows")
        return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


@dataclass(frozen=True, slots=True)
class Decision:
    """``outcome`` ``approval`` means rule 7 applies: the service resolves the approval."""

    outcome: Outcome
    reason: str
    rule: str
    permission_id: uuid.UUID | None = None
    conditions: Mapping[str, Any] = field(default_factory=dict)
    approval_source: str | None = None

    @property
    def authorized(self) -> bool:
        return self.outcome == "allow"


def inactive_decision(status: str) -> Decision | None:
    """Rule 2: an agent that is not active is denied (None when it is active)."""
    if status == "active":
        return None
    return Decision("deny", f"agent is {status}", "agent_not_active")


def _failed_condition(perm: CompiledPermission, req: AuthzRequest, now: datetime) -> str | None:
    window = perm.window
    if window is not None and not window.is_open(now):
        minute = window.local_minute(now)
        return (
            f"time_window {window.text} ({window.zone_name}) of permission {perm.id} is closed "
            f"at {minute // 60:02d}:{minute % 60:02d} {window.zone_name}"
        )
    if perm.max_rows is not None:
        rows = req.rows
        if rows is not None and rows > perm.max_rows:
            return f"context.rows {rows} exceeds max_rows {perm.max_rows} of permission {perm.id}"
    return None


def _condition_rule(message: str) -> str:
    return "time_window" if message.startswith("time_window") else "max_rows"


def evaluate(
    status: str,
    policy: Policy,
    tool: CompiledTool | None,
    req: AuthzRequest,
    now: datetime,
) -> Decision:
    """Rules 2, 4, 5, 6 and whether rule 7 (approval) applies; rule 3 is the caller's."""
    inactive = inactive_decision(status)
    if inactive is not None:
        return inactive
    what = f"{req.action} on {req.resource}"

    # Rule 4: deny wins over everything; then at least one live allow must match.
    for perm in policy.deny.candidates(req.kind, req.name):
        if perm.covers_action(req.action) and perm.is_live(now):
            if perm.window is not None and not perm.window.is_open(now):
                continue  # a deny limited to a time window applies only inside it
            return Decision(
                "deny",
                f"denied by permission {perm.id} (deny {perm.action} on {perm.resource})",
                "deny_permission",
                perm.id,
                perm.conditions,
            )
    matching = [
        perm
        for perm in policy.allow.candidates(req.kind, req.name)
        if perm.covers_action(req.action) and perm.is_live(now)
    ]
    if not matching:
        return Decision("deny", f"no permission for {what}", "no_permission")

    # Rule 5: the most specific allow whose conditions all pass; else name the first failure.
    chosen = None
    first_failure = None
    for perm in matching:
        failure = _failed_condition(perm, req, now)
        if failure is None:
            chosen = perm
            break
        if first_failure is None:
            first_failure = (perm, failure)
    if chosen is None:
        assert first_failure is not None
        perm, failure = first_failure
        return Decision("deny", failure, _condition_rule(failure), perm.id, perm.conditions)

    # Rule 6: tool calls need a registered tool and parameters valid against its schema.
    if req.tool is not None:
        if tool is None:
            return Decision("deny", f"unknown tool {req.tool!r}", "unknown_tool", chosen.id)
        error = tool.first_error(req.parameters if req.parameters is not None else {})
        if error is not None:
            return Decision(
                "deny",
                f"parameters do not match the schema of tool {req.tool!r}: {error}",
                "parameters_schema",
                chosen.id,
                chosen.conditions,
            )

    # Rule 7 (decided by the caller, which owns the approval records) or rule 8.
    source = None
    if tool is not None and req.tool is not None and tool.requires_approval:
        source = f"tool {req.tool!r} requires approval"
    elif chosen.requires_approval:
        source = f"permission {chosen.id} requires approval"
    if source is not None:
        return Decision(
            "approval",
            f"{source} for {what}",
            "requires_approval",
            chosen.id,
            chosen.conditions,
            approval_source=source,
        )
    return Decision(
        "allow",
        f"{GRANTED}: permission {chosen.id} allows {chosen.action} on {chosen.resource}",
        "allowed",
        chosen.id,
        chosen.conditions,
    )


def merge_approval_conditions(
    decision: Decision, approval_conditions: Mapping[str, Any], req: AuthzRequest
) -> tuple[dict[str, Any], str | None]:
    """The conditions in force when an approval is used, and the one the request breaks.

    An approval can only narrow the permission: the smaller ``max_rows`` wins.
    """
    merged: dict[str, Any] = dict(decision.conditions)
    cap = approval_conditions.get("max_rows")
    if isinstance(cap, int) and not isinstance(cap, bool):
        current = merged.get("max_rows")
        merged["max_rows"] = cap if current is None else min(int(current), cap)
    for key, value in approval_conditions.items():
        if key != "max_rows":
            merged.setdefault(key, value)
    limit = merged.get("max_rows")
    rows = req.rows
    if isinstance(limit, int) and rows is not None and rows > limit:
        return merged, f"context.rows {rows} exceeds max_rows {limit} of the approval"
    return merged, None
