"""Helpers shared by the agent, tool, permission and authorize tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from nhi import clock

OWNER = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
GUIDE_AGENT = {
    "name": "data-analyst-bot",
    "description": "Automated data analysis agent",
    "model": "claude-opus-4-6",
    "owner_id": OWNER,
    "risk_level": "medium",
    "max_actions_per_minute": 30,
}
GUIDE_TOOL = {
    "name": "sql-query",
    "description": "Execute read-only SQL queries against the analytics database",
    "category": "database",
    "risk_level": "medium",
    "requires_approval": True,
    "parameters_schema": {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "database": {"type": "string", "enum": ["analytics", "reporting"]},
        },
        "required": ["query", "database"],
    },
}
GUIDE_PERMISSION = {
    "resource": "database:analytics",
    "action": "read",
    "conditions": {"time_window": "09:00-17:00", "max_rows": 10000},
}


def make_agent(client: Any, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {**GUIDE_AGENT, "name": f"agent-{uuid.uuid4().hex[:8]}", **overrides}
    resp = client.post("/nhi/agents", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def make_tool(client: Any, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    resp = client.post("/nhi/tools", json={**GUIDE_TOOL, **overrides}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def grant(client: Any, headers: dict[str, str], agent_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("action", "read")
    resp = client.post(f"/nhi/agents/{agent_id}/permissions", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def authorize(client: Any, headers: dict[str, str], agent_id: str, **body: Any) -> Any:
    return client.post(f"/nhi/agents/{agent_id}/authorize", json=body, headers=headers)


def decide(client: Any, headers: dict[str, str], agent_id: str, **body: Any) -> dict[str, Any]:
    resp = authorize(client, headers, agent_id, **body)
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    assert set(data) >= {
        "authorized",
        "requires_approval",
        "reason",
        "decision_id",
        "approval_id",
        "permission_id",
        "conditions",
    }
    return data


def set_clock(when: datetime) -> None:
    """Move the server clock so that ``clock.now()`` is ``when`` (tests only)."""
    clock.advance(when - clock.now())


def utc(hour: int, minute: int = 0, day: int = 15, month: int = 1) -> datetime:
    """A fixed instant in the future of the real clock (tests only move time forwards)."""
    return datetime(2031, month, day, hour, minute, tzinfo=UTC)
