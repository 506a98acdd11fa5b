"""Audit log schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from nhi.schemas.common import PaginationArgs, UTCDateTime, page_schema


class AuditEventSchema(ma.Schema):
    id = fields.UUID()
    occurred_at = UTCDateTime()
    event_type = fields.String()
    actor_id = fields.String(allow_none=True)
    actor_type = fields.String()
    nhi_id = fields.UUID(allow_none=True)
    resource = fields.String(allow_none=True)
    action = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    decision_id = fields.UUID(allow_none=True)
    approval_id = fields.UUID(allow_none=True)
    details = fields.Dict()
    chain_index = fields.Integer(allow_none=True)
    hash = fields.String(allow_none=True)


class AuditListArgs(PaginationArgs):
    event_type = fields.String(validate=validate.Length(min=1, max=64))
    since = UTCDateTime()
    until = UTCDateTime()

    @ma.validates_schema
    def since_before_until(self, data: dict[str, object], **_: object) -> None:
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since >= until:  # type: ignore[operator]
            raise ma.ValidationError("must be later than since", field_name="until")


class TenantAuditListArgs(AuditListArgs):
    nhi_id = fields.UUID()


class ChainReportSchema(ma.Schema):
    intact = fields.Boolean()
    checked = fields.Integer()
    sealed_now = fields.Integer()
    first_broken_index = fields.Integer(allow_none=True)
    first_broken_event_id = fields.UUID(allow_none=True)
    problem = fields.String(allow_none=True)


AuditPageSchema = page_schema(AuditEventSchema, "AuditPage")
