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
    return result
