"""The reviewer portal: server-rendered pages and htmx fragments under /portal.

Sessions are the same JWTs as the API, carried in an HttpOnly SameSite=Lax cookie scoped to
/portal, with flask-jwt-extended's double-submit CSRF check on every state-changing request.
"""

from __future__ import annotations

from nhi.portal.session import bp

__all__ = ["bp"]

from nhi.portal import approvals as _approvals  # noqa: F401 - registers routes
from nhi.portal import identities as _identities  # noqa: F401 - registers routes
