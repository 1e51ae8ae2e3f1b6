"""Hub accounts: roles, argon2id passwords, login sessions, and the access check every
workflow endpoint goes through (``hub.users.access``)."""
