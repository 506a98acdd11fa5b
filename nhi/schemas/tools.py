"""Tool schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from nhi.models.identities import RISK_LEVELS
from nhi.schemas.common import (
    PaginationArgs,
    StrictSchema,
    UTCDateTime,
    optional_text,
    page_schema,
    required_text,
)

_risk = validate.OneOf(RISK_LEVELS, error="must be one of: {choices}")


class ToolSchema(ma.Schema):
    id = fields.UUID()
    tenant_id = fields.UUID()
    name = fields.String()
    description = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    risk_level = fields.String()
    requires_approval = fields.Boolean()
    parameters_schema = fields.Dict()
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class ToolCreateSchema(StrictSchema):
    name = required_text(200)
    description = optional_text(2000, allow_none=True)
    category = optional_text(100, allow_none=True)
    risk_level = fields.String(load_default="medium", validate=_risk)
    requires_approval = fields.Boolean(load_default=False)
    parameters_schema = fields.Dict(load_default=dict)


class ToolUpdateSchema(StrictSchema):
    """PUT and PATCH are both partial updates."""

    name = required_text(200, required=False)
    description = optional_text(2000, allow_none=True)
    category = optional_text(100, allow_none=True)
    risk_level = fields.String(validate=_risk)
    requires_approval = fields.Boolean()
    parameters_schema = fields.Dict()


class ToolListArgs(PaginationArgs):
    category = fields.String(validate=validate.Length(min=1, max=100))
    risk_level = fields.String(validate=_risk)
    requires_approval = fields.Boolean()
    search = fields.String(validate=validate.Length(max=200))


ToolPageSchema = page_schema(ToolSchema, "ToolPage")
