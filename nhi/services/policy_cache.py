"""Per-process cache of compiled decision inputs, keyed on version stamps that writes bump.

Each authorize call reads the agent row (status, version, limit; already read by the token check
when the agent calls with its own token), and tool calls read the tenant's tool-catalogue
version; compiled permissions are reused while the agent's ``version`` is unchanged
(every identity write and every permission grant or revoke bumps it) and compiled tools while the
catalogue version is unchanged. A suspend or a revoke is therefore seen by the very next call in
every process, and nothing here has to agree across processes.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from nhi.extensions import db
from nhi.models.identities import Identity
from nhi.models.permissions import AgentPermission
from nhi.models.tools import Tool, ToolCatalogVersion
from nhi.services.policy import CompiledTool, Policy, compile_policy, compile_tool

MAX_ENTRIES = 20_000

_lock = threading.Lock()
_policies: dict[uuid.UUID, tuple[int, Policy]] = {}
_tools: dict[tuple[uuid.UUID, str], tuple[int, CompiledTool | None]] = {}


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """The agent columns a decision needs, read fresh on every call."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    expires_at: datetime | None
    version: int
    max_actions_per_minute: int
    last_activity_at: datetime | None

    def effective_status(self, now: datetime) -> str:
        if self.status == "active" and self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return self.status


def load_agent(
    tenant_id: uuid.UUID, agent_id: uuid.UUID, loaded: Identity | None = None
) -> AgentSnapshot | None:
    """The live agent's decision columns: one query, or none when ``loaded`` is that agent's
    row as read earlier in this request (the agent's own token was checked against it)."""
    if (
        loaded is not None
        and loaded.id == agent_id
        and loaded.tenant_id == tenant_id
        and loaded.nhi_type == "ai_agent"
        and loaded.deleted_at is None
    ):
        row: Any = (
            loaded.id,
            loaded.status,
            loaded.expires_at,
            loaded.version,
            loaded.max_actions_per_minute,
            loaded.last_activity_at,
        )
    else:
        row = db.session.execute(
            sa.select(
                Identity.id,
                Identity.status,
                Identity.expires_at,
                Identity.version,
                Identity.max_actions_per_minute,
                Identity.last_activity_at,
            ).where(
                Identity.id == agent_id,
                Identity.tenant_id == tenant_id,
                Identity.nhi_type == "ai_agent",
                Identity.deleted_at.is_(None),
            )
        ).first()
        if row is None:
            return None
    return AgentSnapshot(
        id=row[0],
        tenant_id=tenant_id,
        status=row[1],
        expires_at=row[2],
        version=row[3],
        max_actions_per_minute=row[4] or 60,
        last_activity_at=row[5],
    )


def _store(cache: dict[Any, Any], key: object, value: object) -> None:
    with _lock:
        if len(cache) >= MAX_ENTRIES:
            cache.clear()
        cache[key] = value


def policy_for(agent: AgentSnapshot) -> Policy:
    """The agent's compiled permissions for its current version."""
    cached = _policies.get(agent.id)
    if cached is not None and cached[0] == agent.version:
        return cached[1]
    rows = db.session.execute(
        sa.select(
            AgentPermission.id,
            AgentPermission.resource,
            AgentPermission.action,
            AgentPermission.effect,
            AgentPermission.conditions,
            AgentPermission.expires_at,
        ).where(AgentPermission.tenant_id == agent.tenant_id, AgentPermission.agent_id == agent.id)
    ).mappings()
    policy = compile_policy(dict(row) for row in rows)
    _store(_policies, agent.id, (agent.version, policy))
    return policy


def tool_for(agent: AgentSnapshot, name: str) -> CompiledTool | None:
    """The compiled tool ``name`` of the agent's tenant (None when unknown), as of the tenant's
    current tool-catalogue version (read on every tool call: one primary-key look-up)."""
    version = (
        db.session.execute(
            sa.select(ToolCatalogVersion.version).where(
                ToolCatalogVersion.tenant_id == agent.tenant_id
            )
        ).scalar_one_or_none()
        or 0
    )
    key = (agent.tenant_id, name)
    cached = _tools.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    row = db.session.execute(
        sa.select(Tool.id, Tool.name, Tool.requires_approval, Tool.parameters_schema).where(
            Tool.tenant_id == agent.tenant_id, Tool.name == name
        )
    ).first()
    tool = (
        compile_tool(
            id=row[0], name=row[1], requires_approval=row[2], parameters_schema=row[3] or {}
        )
        if row is not None
        else None
    )
    _store(_tools, key, (version, tool))
    return tool


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _policies.clear()
        _tools.clear()
