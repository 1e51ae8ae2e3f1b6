"""Scheduled hub jobs (default ratings): idempotent, one process at a time via a lease in
``job_leases`` (``leases.py``), each opening its own transactions."""
