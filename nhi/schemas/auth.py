"""Sign-in and caller schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from nhi.schemas.common import StrictSchema


class LoginSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class TokenSchema(ma.Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class WhoAmISchema(ma.Schema):
    sub = fields.String()
    tid = fields.UUID()
    roles = fields.List(fields.String())
    nhi_type = fields.String()
