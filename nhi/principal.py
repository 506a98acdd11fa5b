"""The caller of a service: plain data, no Flask, so services can take it as an argument."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

NHI_ROLES = {"agent": "ai_agent", "service_account": "service_account"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a human (roles such as admin/reviewer) or an NHI acting as itself."""

    sub: str
    tenant_id: uuid.UUID
    roles: tuple[str, ...]
    nhi_type: str | None = None

    @property
    def is_nhi(self) -> bool:
        return self.nhi_type is not None

    @property
    def actor_type(self) -> str:
        if self.nhi_type:
            return self.nhi_type
        return "system" if "system" in self.roles else "human"

    @property
    def nhi_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.sub) if self.nhi_type else None

    def has_role(self, *roles: str) -> bool:
        return not self.is_nhi and any(r in self.roles for r in roles)

    @classmethod
    def system(cls, tenant_id: uuid.UUID) -> Principal:
        return cls(sub="system", tenant_id=tenant_id, roles=("system",))
