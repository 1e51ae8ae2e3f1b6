"""The 差评 workflow (DOMAIN.md, "The 差评 workflow"; issue 5): one work order per 差评.

``machine`` is the table of every legal move and the one function that checks a move;
``service`` opens orders (from ingest, or a sweep), applies moves to the database, computes
deadlines and warnings, and draws revisit samples; ``views`` is the HTTP API.
"""
