"""Registers every /nhi blueprint with the flask-smorest Api (and so with the OpenAPI spec)."""

from __future__ import annotations

from flask import Flask

from nhi.api import agent_authz, approvals, audit, auth, health, identities, tools, webhooks
from nhi.extensions import ProblemApi


def register(app: Flask, api: ProblemApi) -> None:
    app.register_blueprint(health.bp)
    for blp in (
        auth.blp,
        identities.identities_blp,
        identities.service_accounts_blp,
        identities.agents_blp,
        agent_authz.blp,
        tools.blp,
        approvals.blp,
        audit.blp,
        webhooks.blp,
    ):
        api.register_blueprint(blp)
