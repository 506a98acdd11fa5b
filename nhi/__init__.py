"""nhi: a governance server for non-human identities."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from nhi.config import load_config

__all__ = ["create_app"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, error handling, blueprints. No I/O here."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    load_config(app, config)
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from nhi import auth, cli, errors, models  # noqa: F401 - models register their tables
    from nhi.api import register as register_api
    from nhi.extensions import ProblemApi, db, jwt, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR", _migrations_dir())))
    jwt.init_app(app)
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
            "security": [{"bearerAuth": []}],
            "info": {"description": "Governance API for non-human identities."},
        },
    )
    # One Api per app (flask-smorest keeps per-app spec state), reachable as app.extensions.
    api = ProblemApi(app)
    errors.register_error_handlers(app)
    auth.init_app(app)
    register_api(app, api)
    from nhi.portal import bp as portal_bp

    app.register_blueprint(portal_bp)
    cli.register(app)
    from nhi import relay_hooks

    relay_hooks.init_app(app)  # relay outbox events after the request that committed them
    return app


def _migrations_dir() -> str:
    import os

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")
