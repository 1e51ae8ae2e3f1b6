"""The hub's roles (issue 5, "Roles and access") and who may see personal data.

Halls are not a user role here: a hall holds ingest tokens (hub.auth) and can do nothing
else. ``SYSTEM`` is the hub itself acting on ingest (a follow-up rating arriving), never a
login.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # hub administrator (政务服务管理办公室)
    DEPT_HANDLER = "dept_handler"  # responsible department, scoped to its departments
    HOTLINE_VERIFIER = "hotline_verifier"  # 12345 hotline: checks, calls back, verifies
    AUDITOR = "auditor"  # read-only
    SYSTEM = "system"  # the hub itself (ingest hooks, sweeps); cannot log in


LOGIN_ROLES = (Role.ADMIN, Role.DEPT_HANDLER, Role.HOTLINE_VERIFIER, Role.AUDITOR)

# The rater's masked name and phone are shown only to those who must call the rater back
# (DOMAIN.md: rater identity is private). Auditors see whether the rater gave a real name.
SEES_RATER = frozenset({Role.ADMIN, Role.DEPT_HANDLER, Role.HOTLINE_VERIFIER})

ROLE_ZH = {
    Role.ADMIN: "中心平台管理员",
    Role.DEPT_HANDLER: "责任部门经办人",
    Role.HOTLINE_VERIFIER: "12345 热线核实人员",
    Role.AUDITOR: "审计人员（只读）",
    Role.SYSTEM: "系统",
}
