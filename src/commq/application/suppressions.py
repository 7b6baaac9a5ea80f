"""The suppression list as operators see it: list and remove entries, audited."""

from __future__ import annotations

from collections.abc import Sequence

from commq.application.ports import SuppressionStore
from commq.application.scope import read_scope, require
from commq.domain.audit import AuditEntry, Principal
from commq.domain.errors import InvalidJobError
from commq.domain.permissions import Permission
from commq.domain.suppression import Suppression, SuppressionPage


class SuppressionService:
    """Each business's suppressed recipients, for admins and managers.

    Adding happens on its own (hard bounces, spam reports, STOP replies);
    removing one is an operator's audited decision to send to it again.
    """

    def __init__(self, store: SuppressionStore) -> None:
        self._store = store

    async def list(
        self, principal: Principal, business_id: str | None, limit: int, cursor: str | None
    ) -> SuppressionPage:
        """One page of the caller's suppressions (a platform key: every business, or one)."""
        require(principal, Permission.MANAGE_SUPPRESSIONS)
        return await self._store.list_suppressions(
            read_scope(principal, business_id), limit, cursor
        )

    async def find(
        self, principal: Principal, recipient: str, business_id: str | None
    ) -> Sequence[Suppression]:
        """``recipient``'s entries (every channel) in the caller's business, or a platform
        key's every business unless it names one."""
        require(principal, Permission.MANAGE_SUPPRESSIONS)
        business = read_scope(principal, business_id)
        return await self._store.recipient_suppressions(business, recipient)

    async def delete(self, principal: Principal, recipient: str, business_id: str | None) -> int:
        """Remove ``recipient`` from the business's list; returns how many entries went.

        A platform key must name the business: removing a recipient from every
        business at once is never what an operator means.
        """
        require(principal, Permission.MANAGE_SUPPRESSIONS)
        business = read_scope(principal, business_id)
        if business is None:
            raise InvalidJobError("a platform key must name the businessId", "businessId")
        audit = AuditEntry(
            "suppression.delete", principal, business, filter={"recipient": recipient}
        )
        return await self._store.delete_suppression(business, recipient, audit)
