"""Roles and what each may do (DESIGN §4)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The role an API key carries."""

    #: Everything, including delete, process-now and the audit trail.
    ADMIN = "admin"
    #: Runs the queue day to day: view, enqueue, retry, cancel.
    MANAGER = "manager"
    #: Looks into jobs and retries them for customers.
    SUPPORT = "support"
    #: An application that only hands messages in.
    PRODUCER = "producer"


class Permission(StrEnum):
    """One thing a route may require."""

    ENQUEUE = "enqueue"
    VIEW_STATS = "viewStats"
    VIEW_JOBS = "viewJobs"
    RETRY_JOBS = "retryJobs"
    CANCEL_JOBS = "cancelJobs"
    DELETE_JOBS = "deleteJobs"
    PROCESS_MANUALLY = "processManually"
    VIEW_AUDIT = "viewAudit"
    MANAGE_SUPPRESSIONS = "manageSuppressions"


_P = Permission

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: frozenset(
        {
            _P.ENQUEUE,
            _P.VIEW_STATS,
            _P.VIEW_JOBS,
            _P.RETRY_JOBS,
            _P.CANCEL_JOBS,
            _P.MANAGE_SUPPRESSIONS,
        }
    ),
    Role.SUPPORT: frozenset({_P.VIEW_STATS, _P.VIEW_JOBS, _P.RETRY_JOBS}),
    Role.PRODUCER: frozenset({_P.ENQUEUE}),
}


def allows(role: Role, permission: Permission) -> bool:
    """Whether ``role`` carries ``permission``."""
    return permission in ROLE_PERMISSIONS[role]
