"""Configuration defaults, each overridable by an ``NHI_``-prefixed environment variable."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from flask import Flask

DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me"  # refused in production


class ConfigError(RuntimeError):
    """The configuration cannot be used (raised at start-up, never per request)."""


DEFAULTS: dict[str, Any] = {
    # SQLALCHEMY_DATABASE_URI defaults to a SQLite file in the instance folder (set in load_config).
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "JWT_SECRET_KEY": DEV_JWT_SECRET,
    "JWT_ALGORITHM": "HS256",
    # Asymmetric verification: set JWT_PUBLIC_KEY (PEM) and JWT_ALGORITHM to RS256/ES256/EdDSA.
    "JWT_PUBLIC_KEY": None,
    "JWT_PRIVATE_KEY": None,
    "JWT_ISSUER": None,
    "JWT_AUDIENCE": None,
    "JWT_LEEWAY_SECONDS": 30,
    "ACCESS_TOKEN_TTL_SECONDS": 3600,
    "REDIS_URL": None,
    "APPROVAL_TTL_SECONDS": 3600,
    "WEBHOOK_ALLOW_PRIVATE": False,
    # Webhook delivery: timeouts (s), response cap (bytes), attempts per round, retry-delay scale.
    "WEBHOOK_CONNECT_TIMEOUT": 3,
    "WEBHOOK_READ_TIMEOUT": 10,
    "WEBHOOK_MAX_RESPONSE_BYTES": 65536,
    "WEBHOOK_MAX_ATTEMPTS": 10,
    "WEBHOOK_RETRY_SCALE": 1.0,
    "WEBHOOK_LEASE_MARGIN": 20,
    "ENV": "development",
    # flask-smorest / OpenAPI
    "API_TITLE": "nhi",
    "API_VERSION": "0.1.0",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/nhi",
    "OPENAPI_JSON_PATH": "openapi.json",
    # Swagger UI at /nhi/docs, served from the vendored npm package (no CDN at runtime).
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui-5.35.0/",
    "JSON_SORT_KEYS": False,
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("", "0", "false", "no", "off")


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Defaults, then ``NHI_*`` environment variables, then explicit overrides (tests)."""
    app.config.update(DEFAULTS)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
        app.instance_path, "nhi.sqlite3"
    )
    app.config.from_prefixed_env("NHI")
    if overrides:
        app.config.update(overrides)
    if str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite:///" + app.instance_path):
        # As in Flask's tutorial: the embedded default lives in the instance folder.
        os.makedirs(app.instance_path, exist_ok=True)

    cfg = app.config
    cfg["WEBHOOK_ALLOW_PRIVATE"] = _as_bool(cfg.get("WEBHOOK_ALLOW_PRIVATE"))
    uri = str(cfg["SQLALCHEMY_DATABASE_URI"])
    if uri.startswith("postgresql://") or uri.startswith("postgres://"):
        # psycopg 3 is the driver we ship; accept the libpq-style URI users paste.
        uri = "postgresql+psycopg://" + uri.split("://", 1)[1]
        cfg["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("sqlite"):
        # SQLite serialises writers; wait for the lock instead of failing with "database is locked".
        opts = dict(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        opts.setdefault("connect_args", {"timeout": 30})
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = opts

    algorithm = str(cfg["JWT_ALGORITHM"])
    cfg["JWT_DECODE_ALGORITHMS"] = [algorithm]
    if algorithm.startswith("HS"):
        cfg["JWT_PUBLIC_KEY"] = None
        cfg["JWT_PRIVATE_KEY"] = None
    elif not cfg.get("JWT_PUBLIC_KEY"):
        raise ConfigError(f"JWT_ALGORITHM={algorithm} needs NHI_JWT_PUBLIC_KEY (PEM)")
    cfg["JWT_DECODE_ISSUER"] = cfg.get("JWT_ISSUER") or None
    cfg["JWT_DECODE_AUDIENCE"] = cfg.get("JWT_AUDIENCE") or None
    cfg["JWT_ENCODE_ISSUER"] = cfg.get("JWT_ISSUER") or None
    cfg["JWT_ENCODE_AUDIENCE"] = cfg.get("JWT_AUDIENCE") or None
    cfg["JWT_DECODE_LEEWAY"] = int(cfg["JWT_LEEWAY_SECONDS"])
    cfg["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=int(cfg["ACCESS_TOKEN_TTL_SECONDS"]))
    # The API reads bearer headers only; the portal reads its cookie (scoped to /portal) only.
    cfg["JWT_TOKEN_LOCATION"] = ["headers", "cookies"]
    cfg["JWT_ACCESS_COOKIE_PATH"] = "/portal"
    cfg["JWT_ACCESS_CSRF_COOKIE_PATH"] = "/portal"
    cfg["JWT_COOKIE_SAMESITE"] = "Lax"
    cfg["JWT_COOKIE_CSRF_PROTECT"] = True
    cfg["JWT_CSRF_CHECK_FORM"] = True
    cfg["JWT_SESSION_COOKIE"] = True
    secure = cfg.get("PORTAL_COOKIE_SECURE")
    cfg["JWT_COOKIE_SECURE"] = (
        _as_bool(secure) if secure is not None else str(cfg.get("ENV")) == "production"
    )
    cfg["JWT_IDENTITY_CLAIM"] = "sub"
    cfg["JWT_ERROR_MESSAGE_KEY"] = "detail"

    if (
        str(cfg.get("ENV")) == "production"
        and cfg["JWT_SECRET_KEY"] == DEV_JWT_SECRET
        and (algorithm.startswith("HS"))
    ):
        raise ConfigError(
            "NHI_JWT_SECRET_KEY must be set in production (the development default is refused)"
        )
    if (
        algorithm.startswith("HS")
        and str(cfg.get("ENV")) == "production"
        and (len(str(cfg["JWT_SECRET_KEY"])) < 32)
    ):
        raise ConfigError("NHI_JWT_SECRET_KEY must be at least 32 characters in production")
