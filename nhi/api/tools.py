"""The tool catalogue: /nhi/tools."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from nhi.auth import current_principal, require
from nhi.models.tools import Tool
from nhi.schemas.common import page
from nhi.schemas.tools import (
    ToolCreateSchema,
    ToolListArgs,
    ToolPageSchema,
    ToolSchema,
    ToolUpdateSchema,
)
from nhi.services import tools as svc

blp = Blueprint("tools", __name__, url_prefix="/nhi/tools", description="Tools agents invoke")


@blp.post("")
@require("admin")
@blp.arguments(ToolCreateSchema)
@blp.response(201, ToolSchema)
def create(data: dict[str, Any]) -> tuple[Tool, int, dict[str, str]]:
    """Register a tool; parameters_schema must be a valid JSON Schema."""
    tool = svc.create_tool(current_principal(), data)
    return tool, 201, {"Location": url_for("tools.get", tool_id=tool.id)}


@blp.get("")
@require("*")
@blp.arguments(ToolListArgs, location="query")
@blp.response(200, ToolPageSchema)
def list_(args: dict[str, Any]) -> dict[str, Any]:
    """List tools (filters: category, risk_level, requires_approval, search)."""
    filters = svc.ToolFilters(
        category=args.get("category"),
        risk_level=args.get("risk_level"),
        requires_approval=args.get("requires_approval"),
        search=args.get("search"),
    )
    rows, total = svc.list_tools(
        current_principal().tenant_id, filters, limit=args["limit"], offset=args["offset"]
    )
    return page(rows, total, args)


@blp.get("/<uuid:tool_id>")
@require("*")
@blp.response(200, ToolSchema)
def get(tool_id: uuid.UUID) -> Tool:
    """One tool."""
    return svc.get_tool(current_principal().tenant_id, tool_id)


@blp.patch("/<uuid:tool_id>")
@require("admin")
@blp.arguments(ToolUpdateSchema)
@blp.response(200, ToolSchema)
def patch(data: dict[str, Any], tool_id: uuid.UUID) -> Tool:
    """Partial update: omitted fields keep their value."""
    return svc.update_tool(current_principal(), tool_id, data)


@blp.put("/<uuid:tool_id>")
@require("admin")
@blp.arguments(ToolUpdateSchema)
@blp.response(200, ToolSchema)
def put(data: dict[str, Any], tool_id: uuid.UUID) -> Tool:
    """Partial update (same as PATCH)."""
    return svc.update_tool(current_principal(), tool_id, data)


@blp.delete("/<uuid:tool_id>")
@require("admin")
@blp.response(204)
def delete(tool_id: uuid.UUID) -> None:
    """Delete a tool; calls to it are denied as unknown from then on."""
    svc.delete_tool(current_principal(), tool_id)
