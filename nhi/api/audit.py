"""The tenant's audit log and its integrity check."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask_smorest import Blueprint

from nhi.auth import current_principal, require
from nhi.schemas.audit import AuditPageSchema, ChainReportSchema, TenantAuditListArgs
from nhi.schemas.common import page
from nhi.services import audit as svc

blp = Blueprint("audit", __name__, url_prefix="/nhi/audit", description="Audit log")


@blp.get("")
@require("*")
@blp.arguments(TenantAuditListArgs, location="query")
@blp.response(200, AuditPageSchema)
def list_audit(args: dict[str, Any]) -> dict[str, Any]:
    """Audit events of the tenant, newest first (filters: nhi_id, event_type, since, until)."""
    rows, total = svc.list_events(
        current_principal().tenant_id,
        nhi_id=args.get("nhi_id"),
        event_type=args.get("event_type"),
        since=args.get("since"),
        until=args.get("until"),
        limit=args["limit"],
        offset=args["offset"],
    )
    return page(rows, total, args)


@blp.get("/verify")
@require("*")
@blp.response(200, ChainReportSchema)
def verify() -> dict[str, Any]:
    """Seal pending events into the hash chain, then check every link of it."""
    return asdict(svc.verify_chain(current_principal().tenant_id))
