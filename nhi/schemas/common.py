"""Fields and building blocks shared by every resource schema."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from nhi import clock


class StrictSchema(ma.Schema):
    """Request schemas: unknown fields are an error (no mass assignment)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class UTCDateTime(fields.AwareDateTime):
    """RFC 3339 in and out; input without an offset is read as UTC, output always ends in Z."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return clock.isoformat(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        try:
            return result.astimezone(dt.UTC)
        except (OverflowError, ValueError) as exc:  # e.g. year 1 at +14:00
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from exc


class TrimmedString(fields.String):
    """A string with surrounding whitespace removed; blank counts as missing content."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        result = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in result:
            raise ma.ValidationError("must not contain NUL characters")
        return result.strip()


def required_text(max_length: int, *, required: bool = True) -> TrimmedString:
    """Non-blank text; ``required=False`` for partial updates (present → still non-blank)."""
    return TrimmedString(
        required=required,
        validate=validate.Length(min=1, max=max_length, error="must be 1 to {max} characters"),
    )


def optional_text(max_length: int, **kwargs: Any) -> TrimmedString:
    return TrimmedString(
        validate=validate.Length(max=max_length, error="must be at most {max} characters"),
        **kwargs,
    )


class PaginationArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    limit = fields.Integer(
        load_default=20, validate=validate.Range(min=1, max=100, error="must be 1 to 100")
    )
    offset = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=10_000_000, error="must be 0 or more"),
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The ``{items, total, limit, offset}`` envelope around ``item_schema``."""
    return type(
        name,
        (ma.Schema,),
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "total": fields.Integer(required=True),
            "limit": fields.Integer(required=True),
            "offset": fields.Integer(required=True),
        },
    )


def page(items: list[Any], total: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": args["limit"], "offset": args["offset"]}


class ReasonSchema(StrictSchema):
    reason = required_text(2000)


class ProblemSchema(ma.Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict()
