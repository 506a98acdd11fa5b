"""Identity schemas (service accounts and agents), shared by the API and portal forms."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from nhi import clock
from nhi.models.identities import NHI_TYPES, RISK_LEVELS, STATUSES
from nhi.schemas.common import (
    PaginationArgs,
    StrictSchema,
    UTCDateTime,
    optional_text,
    page_schema,
    required_text,
)

READ_ONLY = {
    "status": "is changed only by the suspend/reactivate endpoints",
    "owner_id": "is changed only by the transfer endpoint",
    "tenant_id": "comes from the token and cannot be set",
    "id": "is assigned by the server",
    "nhi_type": "cannot be changed",
}


class IdentitySchema(ma.Schema):
    """What the API returns for every identity; agent-only fields are left out for others."""

    id = fields.UUID()
    tenant_id = fields.UUID()
    nhi_type = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    owner_id = fields.UUID()
    status = fields.Function(lambda obj: obj.effective_status(clock.now()))
    risk_level = fields.String()
    risk_score = fields.Integer(allow_none=True)
    computed_risk_level = fields.String(allow_none=True)
    effective_risk_level = fields.String()
    expires_at = UTCDateTime(allow_none=True)
    last_activity_at = UTCDateTime(allow_none=True)
    last_certified_at = UTCDateTime(allow_none=True)
    suspension_reason = fields.String(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    model = fields.String(allow_none=True)
    max_actions_per_minute = fields.Integer(allow_none=True)

    @ma.post_dump(pass_original=True)
    def drop_agent_fields(self, data: dict[str, Any], original: Any, **_: Any) -> dict[str, Any]:
        if getattr(original, "nhi_type", None) != "ai_agent":
            data.pop("model", None)
            data.pop("max_actions_per_minute", None)
        return data


risk_level_field = fields.String(
    validate=validate.OneOf(RISK_LEVELS, error="must be one of: {choices}")
)


class ServiceAccountCreateSchema(StrictSchema):
    name = required_text(200)
    description = optional_text(2000, allow_none=True)
    owner_id = fields.UUID(required=True)
    nhi_type = fields.String(validate=validate.OneOf(NHI_TYPES, error="must be one of: {choices}"))
    risk_level = fields.String(
        load_default="medium",
        validate=validate.OneOf(RISK_LEVELS, error="must be one of: {choices}"),
    )
    expires_at = UTCDateTime(allow_none=True)


AGENT_RATE = validate.Range(min=1, max=100_000, error="must be between 1 and 100000")


class AgentCreateSchema(ServiceAccountCreateSchema):
    model = optional_text(200, allow_none=True)
    max_actions_per_minute = fields.Integer(strict=True, validate=AGENT_RATE)


class _UpdateBase(StrictSchema):
    @ma.pre_load
    def refuse_read_only(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            errors = {k: [msg] for k, msg in READ_ONLY.items() if k in data}
            if errors:
                raise ma.ValidationError(errors)
        return data


class ServiceAccountUpdateSchema(_UpdateBase):
    """PUT and PATCH are both partial updates (API.md): no field is required."""

    name = required_text(200, required=False)
    description = optional_text(2000, allow_none=True)
    risk_level = fields.String(
        validate=validate.OneOf(RISK_LEVELS, error="must be one of: {choices}")
    )
    expires_at = UTCDateTime(allow_none=True)


class AgentUpdateSchema(ServiceAccountUpdateSchema):
    model = optional_text(200, allow_none=True)
    max_actions_per_minute = fields.Integer(strict=True, validate=AGENT_RATE)


class TransferSchema(StrictSchema):
    new_owner_id = fields.UUID(required=True)
    reason = optional_text(2000, allow_none=True)


class IdentityListArgs(PaginationArgs):
    status = fields.String(validate=validate.OneOf(STATUSES, error="must be one of: {choices}"))
    risk_level = fields.String(
        validate=validate.OneOf(RISK_LEVELS, error="must be one of: {choices}")
    )
    owner_id = fields.UUID()
    search = fields.String(validate=validate.Length(max=200))


class AllIdentitiesListArgs(IdentityListArgs):
    nhi_type = fields.String(validate=validate.OneOf(NHI_TYPES, error="must be one of: {choices}"))


class SummarySchema(ma.Schema):
    total = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_risk_level = fields.Dict(keys=fields.String(), values=fields.Integer())


IdentityPageSchema = page_schema(IdentitySchema, "IdentityPage")
