"""Ingest from the halls (docs/hub-api.md): models (the contract), body (reading a request),
validation (one item, one verdict), service (store each item exactly once), pressure
(back-pressure per process) and views (the HTTP routes)."""
