"""Operator commands: ``flask --app app users|tokens|audit ...``."""

from __future__ import annotations

import uuid

import click
from flask import Flask
from flask.cli import AppGroup

from nhi.errors import DomainError
from nhi.services import audit as audit_svc
from nhi.services import users as user_svc
from nhi.tokens import issue_token

users_cli = AppGroup("users", help="Local human users.")
tokens_cli = AppGroup("tokens", help="Access tokens.")
audit_cli = AppGroup("audit", help="The audit log.")
jobs_cli = AppGroup("jobs", help="Background jobs.")


@jobs_cli.command("run-periodic")
def run_periodic() -> None:
    """Run one pass of every periodic job inline (for cron when there is no Redis worker)."""
    from nhi import periodic

    for name, result in periodic.run_all().items():
        click.echo(f"{name}: {result}")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option(
    "--role", "roles", multiple=True, required=True, help="admin, reviewer or viewer (repeatable)"
)
@click.option("--tenant", "tenant_id", type=click.UUID, required=True)
@click.option("--name", "display_name", default=None)
def create_user(
    email: str,
    password: str,
    roles: tuple[str, ...],
    tenant_id: uuid.UUID,
    display_name: str | None,
) -> None:
    """Create a local user who can sign in with e-mail and password."""
    try:
        user = user_svc.create_user(
            email=email,
            password=password,
            roles=list(roles),
            tenant_id=tenant_id,
            display_name=display_name,
        )
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created user {user.id} <{user.email}> roles={','.join(user.roles)}")


@tokens_cli.command("issue")
@click.option("--sub", required=True, type=click.UUID, help="subject: a human's or an NHI's id")
@click.option("--tenant", "tenant_id", required=True, type=click.UUID)
@click.option("--role", "roles", multiple=True, required=True, help="repeatable")
@click.option("--ttl", "ttl_seconds", type=click.IntRange(60, 366 * 86400), default=3600)
def issue(sub: uuid.UUID, tenant_id: uuid.UUID, roles: tuple[str, ...], ttl_seconds: int) -> None:
    """Print a signed access token (for scripts and first-time set-up)."""
    token, _ = issue_token(sub, tenant_id, roles, ttl_seconds)
    click.echo(token)


@audit_cli.command("seal")
@click.option("--tenant", "tenant_id", required=True, type=click.UUID)
def seal(tenant_id: uuid.UUID) -> None:
    """Link pending audit events of a tenant into its hash chain."""
    click.echo(f"sealed {audit_svc.seal_chain(tenant_id)} event(s)")


@click.command("demo")
def demo() -> None:
    """Create (or keep) a demo tenant with users, identities and pending work, and say how to
    sign in."""
    from nhi.services.demo import seed_demo

    result = seed_demo()
    for line in result.created:
        click.echo(f"created {line}")
    click.echo(f"demo tenant {result.tenant_id}; portal: http://127.0.0.1:5000/portal")
    for email, password, roles in result.users:
        click.echo(f"  sign in as {email} / {password} ({', '.join(roles)})")


def register(app: Flask) -> None:
    app.cli.add_command(demo)
    for group in (users_cli, tokens_cli, audit_cli, jobs_cli):
        app.cli.add_command(group)
