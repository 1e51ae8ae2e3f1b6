"""Hall credentials: bearer tokens (tokens) and their issue, revocation and checking (service).
Hub user accounts with roles and argon2 passwords join this package in a later round."""
