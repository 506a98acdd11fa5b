"""Domain exceptions and the one place that turns them (and every HTTP error) into problem+json."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_MIME = "application/problem+json"
PROBLEM_BASE = "https://nhi.dev/problems/"


class DomainError(Exception):
    """Base of every error a service may raise; ``status`` is the HTTP status it maps to."""

    status = 400
    slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class NotFound(DomainError):
    status = 404
    slug = "not-found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"


class ValidationFailed(DomainError):
    status = 422
    slug = "validation-error"


class PayloadTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"


class RateLimited(DomainError):
    status = 429
    slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after)))}
        super().__init__(detail, headers=headers, **kw)
        self.retry_after = retry_after


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
}


def problem(
    status: int,
    detail: str | None = None,
    *,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """An RFC 9457 problem details response."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + _SLUGS.get(status, str(status)),
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    resp = current_app.response_class(json.dumps(body) + "\n", status=status, mimetype=PROBLEM_MIME)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _flatten_webargs(messages: Any) -> dict[str, Any]:
    """webargs nests field errors by location ({"json": {...}}); clients want the fields."""
    if not isinstance(messages, dict):
        return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def _summary(errors: dict[str, Any]) -> str:
    parts = []
    for field, msgs in list(errors.items())[:5]:
        if isinstance(msgs, list) and msgs and isinstance(msgs[0], str):
            parts.append(f"{field}: {msgs[0]}")
        else:
            parts.append(f"{field}: invalid")
    return "Invalid request: " + "; ".join(parts)


def _wants_problem() -> bool:
    path = request.path
    return path.startswith("/nhi") or path in ("/healthz", "/readyz")


def handle_http_exception(error: HTTPException) -> Response | HTTPException:
    """Every werkzeug/flask-smorest HTTP error under /nhi becomes problem+json."""
    if not _wants_problem():
        return error
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status >= 500:
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
        return problem(500, "The server hit an unexpected error; it has been logged.")
    errors = None
    detail = error.description if isinstance(error.description, str) else None
    if "messages" in data:
        errors = _flatten_webargs(data["messages"])
        if status == 422:
            detail = _summary(errors)
    elif data.get("message"):
        detail = str(data["message"])
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(sorted(valid_methods))
    return problem(status, detail, errors=errors, headers=headers)


def handle_domain_error(error: DomainError) -> Response:
    return problem(
        error.status, error.detail, errors=error.errors, headers=error.headers, extra=error.extra
    )


def handle_unexpected(error: Exception) -> Response | HTTPException:
    if isinstance(error, HTTPException):  # normally routed to handle_http_exception already
        return handle_http_exception(error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _wants_problem():
        raise error
    return problem(500, "The server hit an unexpected error; it has been logged.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected)
