"""The tenant's tool catalogue. Every write bumps the catalogue version that authorize caches on."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from nhi import clock
from nhi.errors import Conflict, NotFound, ValidationFailed
from nhi.extensions import db
from nhi.models.base import contains_text, upsert_insert
from nhi.models.tools import Tool, ToolCatalogVersion
from nhi.principal import Principal
from nhi.services import audit
from nhi.services.policy import check_json_schema

TOOL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}")
UPDATABLE = {
    "name",
    "description",
    "category",
    "risk_level",
    "requires_approval",
    "parameters_schema",
}


@dataclass(frozen=True)
class ToolFilters:
    category: str | None = None
    risk_level: str | None = None
    requires_approval: bool | None = None
    search: str | None = None


def _bump_catalog(tenant_id: uuid.UUID) -> None:
    stmt = upsert_insert(ToolCatalogVersion).values(tenant_id=tenant_id, version=1)
    db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ToolCatalogVersion.tenant_id],
            set_={"version": ToolCatalogVersion.version + 1},
        )
    )


def _check(data: dict[str, Any]) -> None:
    if "name" in data and not TOOL_NAME_RE.fullmatch(data["name"]):
        raise ValidationFailed(
            "A tool name is letters, digits, _ . - (it is used in resources as tool:<name>).",
            errors={"name": ["must be letters, digits, _ . - and start with a letter or digit"]},
        )
    if "parameters_schema" in data:
        problem = check_json_schema(data["parameters_schema"])
        if problem is not None:
            raise ValidationFailed(
                f"parameters_schema is not a valid JSON Schema: {problem}",
                errors={"parameters_schema": [problem]},
            )


def _duplicate(name: str) -> Conflict:
    return Conflict(
        f"A tool named {name!r} already exists in this tenant.", errors={"name": ["already exists"]}
    )


def _name_taken(tenant_id: uuid.UUID, name: str, exclude: uuid.UUID | None = None) -> bool:
    conds = [Tool.tenant_id == tenant_id, Tool.name == name]
    if exclude is not None:
        conds.append(Tool.id != exclude)
    return db.session.execute(sa.select(Tool.id).where(*conds).limit(1)).first() is not None


def _commit(name: str) -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise _duplicate(name) from exc


def snapshot(tool: Tool) -> dict[str, Any]:
    return {
        "id": tool.id,
        "name": tool.name,
        "category": tool.category,
        "risk_level": tool.risk_level,
        "requires_approval": tool.requires_approval,
    }


def create_tool(actor: Principal, data: dict[str, Any]) -> Tool:
    """Register a tool. Raises ValidationFailed (name, JSON Schema), Conflict (name)."""
    data = {"parameters_schema": {}, **data}
    _check(data)
    if _name_taken(actor.tenant_id, data["name"]):
        raise _duplicate(data["name"])
    now = clock.now()
    tool = Tool(
        id=uuid.uuid4(),
        tenant_id=actor.tenant_id,
        name=data["name"],
        description=data.get("description"),
        category=data.get("category"),
        risk_level=data.get("risk_level") or "medium",
        requires_approval=bool(data.get("requires_approval", False)),
        parameters_schema=data["parameters_schema"],
        created_at=now,
        updated_at=now,
    )
    db.session.add(tool)
    _bump_catalog(actor.tenant_id)
    audit.record(actor, "tool.created", resource=f"tool:{tool.name}", details=snapshot(tool))
    _commit(tool.name)
    return tool


def get_tool(tenant_id: uuid.UUID, tool_id: uuid.UUID) -> Tool:
    """The tool, or NotFound (also for other tenants' ids)."""
    tool = db.session.execute(
        sa.select(Tool).where(Tool.id == tool_id, Tool.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if tool is None:
        raise NotFound(f"No tool with id {tool_id}.")
    return tool


def list_tools(
    tenant_id: uuid.UUID, filters: ToolFilters, *, limit: int, offset: int
) -> tuple[list[Tool], int]:
    """Tools of the tenant by name (filters: category, risk_level, requires_approval, search)."""
    conds: list[sa.ColumnElement[bool]] = [Tool.tenant_id == tenant_id]
    if filters.category:
        conds.append(Tool.category == filters.category)
    if filters.risk_level:
        conds.append(Tool.risk_level == filters.risk_level)
    if filters.requires_approval is not None:
        conds.append(Tool.requires_approval.is_(filters.requires_approval))
    if filters.search:
        conds.append(contains_text(filters.search, Tool.name, Tool.description))
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(Tool).where(*conds)
    ).scalar_one()
    rows = db.session.execute(
        sa.select(Tool).where(*conds).order_by(Tool.name, Tool.id).limit(limit).offset(offset)
    ).scalars()
    return list(rows), total


def update_tool(actor: Principal, tool_id: uuid.UUID, changes: dict[str, Any]) -> Tool:
    """Partial update. Raises NotFound, ValidationFailed, Conflict (name)."""
    tool = get_tool(actor.tenant_id, tool_id)
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValidationFailed(
            "These fields cannot be updated.",
            errors={k: ["cannot be updated"] for k in sorted(unknown)},
        )
    _check(changes)
    if (
        changes.get("name")
        and changes["name"] != tool.name
        and _name_taken(actor.tenant_id, changes["name"], tool.id)
    ):
        raise _duplicate(changes["name"])
    before = {k: getattr(tool, k) for k in changes}
    for key, value in changes.items():
        setattr(tool, key, value)
    changed = {k: {"from": before[k], "to": v} for k, v in changes.items() if before[k] != v}
    if changed:
        tool.updated_at = clock.now()
        _bump_catalog(actor.tenant_id)
        audit.record(
            actor, "tool.updated", resource=f"tool:{tool.name}", details={"changes": changed}
        )
    _commit(tool.name)
    db.session.refresh(tool)
    return tool


def delete_tool(actor: Principal, tool_id: uuid.UUID) -> None:
    """Remove the tool; calls to it are denied as unknown from the next authorize on."""
    tool = get_tool(actor.tenant_id, tool_id)
    data = snapshot(tool)
    db.session.delete(tool)
    _bump_catalog(actor.tenant_id)
    audit.record(actor, "tool.deleted", resource=f"tool:{data['name']}", details=data)
    db.session.commit()
