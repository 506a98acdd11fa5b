"""Service accounts and agents: one blueprint factory, one service, two URL prefixes."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import url_for
from flask_smorest import Blueprint

from nhi.auth import current_principal, require
from nhi.models.identities import Identity
from nhi.schemas.common import ReasonSchema, page
from nhi.schemas.identities import (
    AgentCreateSchema,
    AgentUpdateSchema,
    AllIdentitiesListArgs,
    IdentityListArgs,
    IdentityPageSchema,
    IdentitySchema,
    ServiceAccountCreateSchema,
    ServiceAccountUpdateSchema,
    SummarySchema,
    TransferSchema,
)
from nhi.services import identities as svc

ANY_HUMAN = "*"


def _filters(args: dict[str, Any], nhi_type: str | None) -> svc.IdentityFilters:
    return svc.IdentityFilters(
        nhi_type=nhi_type or args.get("nhi_type"),
        status=args.get("status"),
        risk_level=args.get("risk_level"),
        owner_id=args.get("owner_id"),
        search=args.get("search"),
    )


def make_identity_blueprint(
    *,
    name: str,
    path: str,
    nhi_type: str,
    label: str,
    create_schema: type[ma.Schema],
    update_schema: type[ma.Schema],
) -> Blueprint:
    """The full lifecycle API of one identity type under ``/nhi/<path>``."""
    blp = Blueprint(name, __name__, url_prefix=f"/nhi/{path}", description=f"{label}s")

    @blp.post("")
    @require("admin")
    @blp.arguments(create_schema)
    @blp.response(201, IdentitySchema)
    def create(data: dict[str, Any]) -> tuple[Identity, int, dict[str, str]]:
        identity = svc.create_identity(current_principal(), nhi_type, data)
        location = url_for(f"{name}.get", identity_id=identity.id)
        return identity, 201, {"Location": location}

    create.__doc__ = f"Register a {label.lower()}."

    @blp.get("")
    @require(ANY_HUMAN)
    @blp.arguments(IdentityListArgs, location="query")
    @blp.response(200, IdentityPageSchema)
    def list_(args: dict[str, Any]) -> dict[str, Any]:
        rows, total = svc.list_identities(
            current_principal().tenant_id,
            _filters(args, nhi_type),
            limit=args["limit"],
            offset=args["offset"],
        )
        return page(rows, total, args)

    list_.__doc__ = f"List {label.lower()}s (filters: status, risk_level, owner_id, search)."

    @blp.get("/summary")
    @require(ANY_HUMAN)
    @blp.response(200, SummarySchema)
    def summary() -> dict[str, Any]:
        return svc.summary(current_principal().tenant_id, nhi_type)

    summary.__doc__ = f"Counts of {label.lower()}s by status and effective risk level."

    @blp.get("/<uuid:identity_id>")
    @require(ANY_HUMAN, nhi_self="identity_id")
    @blp.response(200, IdentitySchema)
    def get(identity_id: uuid.UUID) -> Identity:
        return svc.get_identity(current_principal().tenant_id, identity_id, nhi_type)

    get.__doc__ = f"One {label.lower()} (an NHI token may read its own record)."

    def _update(data: dict[str, Any], identity_id: uuid.UUID) -> Identity:
        return svc.update_identity(current_principal(), nhi_type, identity_id, data)

    @blp.put("/<uuid:identity_id>")
    @require("admin")
    @blp.arguments(update_schema)
    @blp.response(200, IdentitySchema)
    def put(data: dict[str, Any], identity_id: uuid.UUID) -> Identity:
        return _update(data, identity_id)

    put.__doc__ = "Partial update (same as PATCH): omitted fields keep their value."

    @blp.patch("/<uuid:identity_id>")
    @require("admin")
    @blp.arguments(update_schema)
    @blp.response(200, IdentitySchema)
    def patch(data: dict[str, Any], identity_id: uuid.UUID) -> Identity:
        return _update(data, identity_id)

    patch.__doc__ = "Partial update of name, description, risk_level, expires_at."

    @blp.delete("/<uuid:identity_id>")
    @require("admin")
    @blp.response(204)
    def delete(identity_id: uuid.UUID) -> None:
        svc.delete_identity(current_principal(), nhi_type, identity_id)

    delete.__doc__ = f"Delete a {label.lower()}; its audit trail stays readable."

    @blp.post("/<uuid:identity_id>/suspend")
    @require("admin")
    @blp.arguments(ReasonSchema)
    @blp.response(200, IdentitySchema)
    def suspend(data: dict[str, Any], identity_id: uuid.UUID) -> Identity:
        """Suspend: its tokens and authorize calls are refused at once."""
        return svc.suspend(current_principal(), nhi_type, identity_id, data["reason"])

    @blp.post("/<uuid:identity_id>/reactivate")
    @require("admin")
    @blp.arguments(ReasonSchema)
    @blp.response(200, IdentitySchema)
    def reactivate(data: dict[str, Any], identity_id: uuid.UUID) -> Identity:
        """Reactivate a suspended identity (to expired when past its expiry)."""
        return svc.reactivate(current_principal(), nhi_type, identity_id, data["reason"])

    @blp.post("/<uuid:identity_id>/transfer")
    @require("admin")
    @blp.arguments(TransferSchema)
    @blp.response(200, IdentitySchema)
    def transfer(data: dict[str, Any], identity_id: uuid.UUID) -> Identity:
        """Transfer ownership to another accountable human."""
        return svc.transfer(
            current_principal(), nhi_type, identity_id, data["new_owner_id"], data.get("reason")
        )

    return blp


service_accounts_blp = make_identity_blueprint(
    name="service_accounts",
    path="service-accounts",
    nhi_type="service_account",
    label="Service account",
    create_schema=ServiceAccountCreateSchema,
    update_schema=ServiceAccountUpdateSchema,
)

agents_blp = make_identity_blueprint(
    name="agents",
    path="agents",
    nhi_type="ai_agent",
    label="AI agent",
    create_schema=AgentCreateSchema,
    update_schema=AgentUpdateSchema,
)

identities_blp = Blueprint(
    "identities", __name__, url_prefix="/nhi/identities", description="All identities"
)


@identities_blp.get("")
@require(ANY_HUMAN)
@identities_blp.arguments(AllIdentitiesListArgs, location="query")
@identities_blp.response(200, IdentityPageSchema)
def list_identities(args: dict[str, Any]) -> dict[str, Any]:
    """Service accounts and agents in one list (filters as their own lists, plus nhi_type)."""
    rows, total = svc.list_identities(
        current_principal().tenant_id,
        _filters(args, None),
        limit=args["limit"],
        offset=args["offset"],
    )
    return page(rows, total, args)
