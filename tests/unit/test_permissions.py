"""The role → permission matrix of DESIGN §4, cell by cell."""

from __future__ import annotations

import pytest

from commq.domain.permissions import ROLE_PERMISSIONS, Permission, Role, allows

YES, NO = True, False

ROLE_COLUMNS = ("admin", "manager", "support", "producer")

#: DESIGN §4, plus §3's suppressions row (admin, manager). One row per
#: permission, one column per role, negative cells included.
# fmt: off
DESIGN_MATRIX: dict[str, tuple[bool, bool, bool, bool]] = {
    #                      admin  manager  support  producer
    "enqueue":            (YES,   YES,     NO,      YES),
    "viewStats":          (YES,   YES,     YES,     NO),
    "viewJobs":           (YES,   YES,     YES,     NO),
    "retryJobs":          (YES,   YES,     YES,     NO),
    "cancelJobs":         (YES,   YES,     NO,      NO),
    "deleteJobs":         (YES,   NO,      NO,      NO),
    "processManually":    (YES,   NO,      NO,      NO),
    "viewAudit":          (YES,   NO,      NO,      NO),
    "manageSuppressions": (YES,   YES,     NO,      NO),
}
# fmt: on

CELLS = [
    (Role(role), Permission(permission), granted)
    for permission, row in DESIGN_MATRIX.items()
    for role, granted in zip(ROLE_COLUMNS, row, strict=True)
]


def _cell_id(role: Role, permission: Permission, granted: bool) -> str:
    return f"{role}-{'may' if granted else 'may-not'}-{permission}"


def test_the_matrix_names_every_role_and_every_permission() -> None:
    assert {Role(role) for role in ROLE_COLUMNS} == set(Role)
    assert {Permission(permission) for permission in DESIGN_MATRIX} == set(Permission)


def test_each_role_holds_exactly_the_permissions_of_the_design_table() -> None:
    expected = {
        Role(role): frozenset(
            Permission(permission)
            for permission, row in DESIGN_MATRIX.items()
            if row[ROLE_COLUMNS.index(role)]
        )
        for role in ROLE_COLUMNS
    }

    assert expected == ROLE_PERMISSIONS


@pytest.mark.parametrize(
    ("role", "permission", "granted"), CELLS, ids=[_cell_id(*cell) for cell in CELLS]
)
def test_allows_answers_each_cell_of_the_design_table(
    role: Role, permission: Permission, granted: bool
) -> None:
    assert allows(role, permission) is granted


def test_an_admin_may_do_everything() -> None:
    assert all(allows(Role.ADMIN, permission) for permission in Permission)


def test_a_producer_may_only_enqueue() -> None:
    assert {p for p in Permission if allows(Role.PRODUCER, p)} == {Permission.ENQUEUE}


def test_support_may_look_and_retry_but_not_enqueue_or_cancel() -> None:
    assert {p for p in Permission if allows(Role.SUPPORT, p)} == {
        Permission.VIEW_STATS,
        Permission.VIEW_JOBS,
        Permission.RETRY_JOBS,
    }


def test_only_an_admin_may_delete_process_now_or_read_the_audit_trail() -> None:
    admin_only = {Permission.DELETE_JOBS, Permission.PROCESS_MANUALLY, Permission.VIEW_AUDIT}

    for permission in admin_only:
        assert {role for role in Role if allows(role, permission)} == {Role.ADMIN}
