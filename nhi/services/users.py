"""Local human users: creation (CLI, demo) and password sign-in."""

from __future__ import annotations

import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError

from nhi.errors import Conflict, Unauthorized, ValidationFailed
from nhi.extensions import db
from nhi.models.users import HUMAN_ROLES, User

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths cost one Argon2 verification.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    *,
    email: str,
    password: str,
    roles: list[str],
    tenant_id: uuid.UUID,
    display_name: str | None = None,
) -> User:
    """Create a local user. Raises ValidationFailed (roles, password) or Conflict (e-mail)."""
    bad = [r for r in roles if r not in HUMAN_ROLES]
    if bad or not roles:
        raise ValidationFailed(
            f"roles must be a non-empty subset of {', '.join(HUMAN_ROLES)}",
            errors={"roles": [f"unknown role(s): {', '.join(bad)}" if bad else "required"]},
        )
    if len(password) < 8:
        raise ValidationFailed(
            "password must be at least 8 characters", errors={"password": ["too short"]}
        )
    user = User(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        email=normalise_email(email),
        display_name=display_name,
        password_hash=_hasher.hash(password),
        roles=list(dict.fromkeys(roles)),
        active=True,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict(f"A user with e-mail {user.email} already exists.") from exc
    return user


def authenticate(email: str, password: str) -> User:
    """The active user with these credentials, or Unauthorized (same answer for every failure)."""
    user = db.session.execute(
        db.select(User).where(User.email == normalise_email(email))
    ).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.active else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.active:
        raise Unauthorized("Unknown e-mail or wrong password.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        db.session.commit()
    return user
