"""Which business a caller acts on (DESIGN §3, tenants)."""

from __future__ import annotations

from commq.domain.audit import Principal
from commq.domain.errors import InvalidJobError, PermissionDeniedError
from commq.domain.permissions import Permission, allows


def require(principal: Principal, permission: Permission) -> None:
    """Raise PermissionDeniedError unless the principal's role carries ``permission``."""
    if not allows(principal.role, permission):
        raise PermissionDeniedError(
            f"The {principal.role.value} role does not have the {permission.value} permission"
        )


def read_scope(principal: Principal, requested: str | None) -> str | None:
    """The business a read or bulk action covers; None: every business (platform keys only).

    A business key always sees its own business; asking for another one is refused
    rather than silently ignored, so a mistake is visible.
    """
    if principal.business_id is None:
        return requested
    if requested is not None and requested != principal.business_id:
        raise PermissionDeniedError("This key may only act on its own business")
    return principal.business_id


def enqueue_scope(principal: Principal, requested: str | None, field: str = "businessId") -> str:
    """The business a new job belongs to: the key's own, or, for a platform key, the named one."""
    if principal.business_id is None:
        if not requested:
            raise InvalidJobError("a platform key must name the businessId of each job", field)
        return requested
    if requested is not None and requested != principal.business_id:
        raise PermissionDeniedError("This key may only enqueue jobs for its own business")
    return principal.business_id
