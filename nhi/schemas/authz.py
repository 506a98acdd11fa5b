"""Agent permissions, authorize requests and decisions, outcomes."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from nhi.models.permissions import EFFECTS
from nhi.schemas.common import PaginationArgs, StrictSchema, UTCDateTime, page_schema


class PermissionSchema(ma.Schema):
    id = fields.UUID()
    agent_id = fields.UUID()
    resource = fields.String()
    action = fields.String()
    effect = fields.String()
    conditions = fields.Dict()
    expires_at = UTCDateTime(allow_none=True)
    granted_by = fields.String()
    created_at = UTCDateTime()


class PermissionCreateSchema(StrictSchema):
    """``conditions`` keys are checked by the service (unknown keys and bad windows → 422)."""

    resource = fields.String(required=True, validate=validate.Length(min=1, max=300))
    action = fields.String(required=True, validate=validate.Length(min=1, max=100))
    effect = fields.String(
        load_default="allow", validate=validate.OneOf(EFFECTS, error="must be allow or deny")
    )
    conditions = fields.Dict(keys=fields.String(), load_default=dict)
    expires_at = UTCDateTime(allow_none=True)


class PermissionListArgs(PaginationArgs):
    effect = fields.String(validate=validate.OneOf(EFFECTS, error="must be allow or deny"))


class AuthorizeSchema(StrictSchema):
    """Either ``resource`` + ``action`` or ``tool`` (+ ``parameters``); ``context`` optional."""

    resource = fields.String(validate=validate.Length(min=1, max=300))
    action = fields.String(validate=validate.Length(min=1, max=100))
    tool = fields.String(validate=validate.Length(min=1, max=200))
    parameters = fields.Dict(keys=fields.String())
    context = fields.Dict(keys=fields.String(), load_default=dict)

    @ma.validates_schema
    def check_rows(self, data: dict[str, Any], **_: Any) -> None:
        rows = (data.get("context") or {}).get("rows")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
            raise ma.ValidationError({"rows": ["must be an integer >= 0"]}, field_name="context")


class DecisionSchema(ma.Schema):
    authorized = fields.Boolean()
    requires_approval = fields.Boolean()
    reason = fields.String()
    decision_id = fields.UUID()
    approval_id = fields.UUID(allow_none=True)
    permission_id = fields.UUID(allow_none=True)
    conditions = fields.Dict()


class OutcomeSchema(StrictSchema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(("success", "error"), error="must be success or error"),
    )
    detail = fields.String(allow_none=True, validate=validate.Length(max=2000))


PermissionPageSchema = page_schema(PermissionSchema, "PermissionPage")
