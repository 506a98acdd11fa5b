"""Demo data: a tenant a newcomer can sign in to and click through (idempotent)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from nhi.extensions import db
from nhi.models.identities import Identity
from nhi.models.users import User
from nhi.principal import Principal
from nhi.services import identities, users

DEMO_TENANT = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
DEMO_USERS = (
    ("admin@demo.nhi", "demo-admin-pass", ["admin"], "Demo Admin"),
    ("reviewer@demo.nhi", "demo-reviewer-pass", ["reviewer"], "Demo Reviewer"),
)
SERVICE_ACCOUNTS = (
    ("ci-pipeline-prod", "Production CI/CD pipeline service account", "medium"),
    ("billing-sync", "Nightly invoice export to the ERP", "high"),
    ("log-shipper", "Ships application logs to the SIEM", "low"),
)
AGENTS = (
    ("data-analyst-bot", "Automated data analysis agent", "claude-opus-4-6", "medium", 30),
    ("support-triage", "Routes and drafts answers to support tickets", "gpt-5", "high", 60),
)


@dataclass
class DemoResult:
    tenant_id: uuid.UUID
    users: list[tuple[str, str, list[str]]]
    created: list[str] = field(default_factory=list)
    admin_id: uuid.UUID | None = None


def seed_demo() -> DemoResult:
    """Create the demo tenant's users and identities unless they already exist."""
    result = DemoResult(tenant_id=DEMO_TENANT, users=[(e, p, r) for e, p, r, _ in DEMO_USERS])
    for email, password, roles, name in DEMO_USERS:
        existing = db.session.execute(
            db.select(User).where(User.email == email)
        ).scalar_one_or_none()
        if existing is None:
            existing = users.create_user(
                email=email,
                password=password,
                roles=roles,
                tenant_id=DEMO_TENANT,
                display_name=name,
            )
            result.created.append(f"user {email}")
        if "admin" in roles:
            result.admin_id = existing.id
    assert result.admin_id is not None
    actor = Principal(sub=str(result.admin_id), tenant_id=DEMO_TENANT, roles=("admin",))
    existing_names = set(
        db.session.execute(
            db.select(Identity.name).where(
                Identity.tenant_id == DEMO_TENANT, Identity.deleted_at.is_(None)
            )
        ).scalars()
    )
    for name, description, risk in SERVICE_ACCOUNTS:
        if name not in existing_names:
            identities.create_identity(
                actor,
                "service_account",
                {
                    "name": name,
                    "description": description,
                    "risk_level": risk,
                    "owner_id": result.admin_id,
                },
            )
            result.created.append(f"service account {name}")
    for name, description, model, risk, rate in AGENTS:
        if name not in existing_names:
            identities.create_identity(
                actor,
                "ai_agent",
                {
                    "name": name,
                    "description": description,
                    "model": model,
                    "risk_level": risk,
                    "max_actions_per_minute": rate,
                    "owner_id": result.admin_id,
                },
            )
            result.created.append(f"agent {name}")
    _seed_agent_work(actor, result)
    return result


def _seed_agent_work(actor: Principal, result: DemoResult) -> None:
    """Tools, permissions and a few pending approvals for data-analyst-bot (once)."""
    from datetime import timedelta

    from nhi.models.tools import Tool
    from nhi.services import authorize, permissions, tools

    if (
        db.session.execute(db.select(Tool.id).where(Tool.tenant_id == DEMO_TENANT).limit(1)).first()
        is not None
    ):
        return
    tools.create_tool(
        actor,
        {
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
        },
    )
    tools.create_tool(
        actor,
        {
            "name": "send-email",
            "description": "Send an e-mail on behalf of the support team",
            "category": "communication",
            "risk_level": "high",
            "requires_approval": True,
            "parameters_schema": {
                "type": "object",
                "properties": {"to": {"type": "string"}, "subject": {"type": "string"}},
                "required": ["to"],
            },
        },
    )
    agents = {
        row.name: row
        for row in db.session.execute(
            db.select(Identity).where(
                Identity.tenant_id == DEMO_TENANT, Identity.nhi_type == "ai_agent"
            )
        ).scalars()
    }
    analyst, triage = agents["data-analyst-bot"], agents["support-triage"]
    permissions.grant(
        actor,
        analyst.id,
        {"resource": "tool:sql-query", "action": "invoke", "conditions": {"max_rows": 10000}},
    )
    permissions.grant(actor, analyst.id, {"resource": "database:analytics", "action": "read"})
    permissions.grant(actor, triage.id, {"resource": "tool:send-email", "action": "invoke"})
    requests = [
        (
            analyst,
            {
                "tool": "sql-query",
                "context": {"rows": 2500},
                "parameters": {
                    "query": "SELECT region, sum(total) FROM sales GROUP BY region",
                    "database": "analytics",
                },
            },
        ),
        (
            analyst,
            {
                "tool": "sql-query",
                "context": {"rows": 9000},
                "parameters": {
                    "query": "SELECT * FROM customers WHERE churned",
                    "database": "reporting",
                },
            },
        ),
        (
            triage,
            {
                "tool": "send-email",
                "parameters": {"to": "customer@example.com", "subject": "Your refund"},
            },
        ),
    ]
    for agent, body in requests:
        agent_actor = Principal(
            sub=str(agent.id), tenant_id=DEMO_TENANT, roles=("agent",), nhi_type="ai_agent"
        )
        authorize.authorize(
            agent_actor, agent.id, body, redis=None, approval_ttl=timedelta(hours=24)
        )
    result.created.append(f"{len(requests)} pending approvals")
