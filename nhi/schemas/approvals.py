"""HITL approval schemas, shared by the API and the portal's decision forms."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from nhi.models.approvals import APPROVAL_STATUSES
from nhi.schemas.common import (
    PaginationArgs,
    StrictSchema,
    UTCDateTime,
    optional_text,
    page_schema,
    required_text,
)


class ApprovalSchema(ma.Schema):
    id = fields.UUID()
    agent_id = fields.UUID()
    agent_name = fields.String(allow_none=True)
    tool = fields.String(allow_none=True)
    resource = fields.String()
    action = fields.String()
    parameters = fields.Raw(allow_none=True)
    context = fields.Dict()
    status = fields.String()
    requested_by = fields.String()
    requested_at = UTCDateTime()
    expires_at = UTCDateTime()
    decided_by = fields.String(allow_none=True)
    decided_at = UTCDateTime(allow_none=True)
    reason = fields.String(allow_none=True)
    conditions = fields.Dict()
    used_at = UTCDateTime(allow_none=True)


class ApprovalStatusSchema(ma.Schema):
    id = fields.UUID()
    status = fields.String()
    decided_by = fields.String(allow_none=True)
    decided_at = UTCDateTime(allow_none=True)
    conditions = fields.Dict()
    reason = fields.String(allow_none=True)
    expires_at = UTCDateTime()
    used_at = UTCDateTime(allow_none=True)


class ApprovalConditionsSchema(StrictSchema):
    max_rows = fields.Integer(
        validate=validate.Range(min=0, max=2**31 - 1, error="must be an integer of 0 or more"),
        strict=True,
    )
    expires_in_minutes = fields.Integer(
        validate=validate.Range(min=1, max=1440, error="must be between 1 and 1440"),
        strict=True,
    )


class ApproveSchema(StrictSchema):
    reason = optional_text(2000, allow_none=True)
    conditions = fields.Nested(ApprovalConditionsSchema, allow_none=True)


class DenySchema(StrictSchema):
    reason = required_text(2000)


class ApprovalListArgs(PaginationArgs):
    status = fields.String(
        validate=validate.OneOf(APPROVAL_STATUSES, error="must be one of: {choices}")
    )
    agent_id = fields.UUID()


class StatusArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    wait = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=30, error="must be 0 to 30 seconds")
    )


ApprovalPageSchema = page_schema(ApprovalSchema, "ApprovalPage")
