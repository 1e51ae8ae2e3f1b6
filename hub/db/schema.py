"""The hub's tables (SQLAlchemy Core): what the code reads and writes.

Strategy:
- Natural keys where the domain has them (hall id, device id, 事项 code, credit code, case
  number within its hall), so ingest can write reference rows with ``ON CONFLICT DO NOTHING``
  and never needs a read-then-write round trip; surrogate integer ids only for the big
  append-only tables (ratings, case events, health samples, audit log).
- Reference rows (devices, windows, staff accounts, items, departments) are learnt from the
  data the halls send, so foreign keys hold without ordering requirements between endpoints.
  Cases are linked to ratings by ``(hall_id, case_no)`` without a foreign key: a rating may
  arrive before the event that opens its case (docs/hub-api.md, "Ordering").
- Ratings, case events, health samples and the audit log are append-only: the code has no
  UPDATE or DELETE path for them, and the migration installs triggers that make the database
  refuse both (DOMAIN.md: nothing may drop or alter a rating).
- Each idempotent table has one unique text ``*_key`` (docs/hub-api.md: the item's ``key``),
  so one ``ON CONFLICT DO NOTHING`` covers its identity on both databases.

The migrations in ``migrations/versions`` build exactly this (tests/hub/test_schema.py).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from hub.db.types import UTCDateTime

# Column sizes; the API limits (hub.ingest.models) are at or below these.
ID_LEN = 32  # hall, window, staff, device ids: the protocol's ids (MQTT topic levels)
KEY_LEN = 160  # "<source>:<hall_id>:<origin_id>" and the other identity keys
CODE_LEN = 64  # case numbers, 事项 codes, origin and event ids
NAME_LEN = 200  # hall, department and 事项 names
SHA256_HEX = 64
TOKEN_ID_LEN = 12

# SQLite: BIGINT primary keys are not rowid aliases and would not autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

halls = Table(
    "halls",
    metadata,
    Column("hall_id", String(ID_LEN), primary_key=True),
    Column("name", String(NAME_LEN), nullable=False),
    Column("area_code", String(9), nullable=False),  # 行政区划, 9 digits
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("length(area_code) = 9", name="area_code_len"),
)

hall_credentials = Table(
    "hall_credentials",
    metadata,
    Column("token_id", String(TOKEN_ID_LEN), primary_key=True),
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), nullable=False, index=True),
    Column("token_sha256", String(SHA256_HEX), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("note", String(NAME_LEN), nullable=True),
)

departments = Table(
    "departments",
    metadata,
    Column("dept_code", String(18), primary_key=True),  # 统一社会信用代码 (GB 32100)
    Column("name", String(NAME_LEN), nullable=True),
    Column("area_code", String(9), nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    CheckConstraint("length(dept_code) = 18", name="dept_code_len"),
)

windows = Table(
    "windows",
    metadata,
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), primary_key=True),
    Column("window_id", String(ID_LEN), primary_key=True),
    Column("label", String(NAME_LEN), nullable=True),
    Column("dept_code", String(18), ForeignKey("departments.dept_code"), nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
)

staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), primary_key=True),
    Column("staff_id", String(ID_LEN), primary_key=True),
    Column("name_masked", String(ID_LEN), nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(ID_LEN), primary_key=True),
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), nullable=False, index=True),
    Column("kind", String(16), nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("item_code", String(CODE_LEN), primary_key=True),  # 事项编码 (taskCode)
    Column("item_name", String(NAME_LEN), nullable=True),  # first name seen; ratings keep theirs
    Column("first_seen_at", UTCDateTime, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), primary_key=True),
    Column("case_no", String(CODE_LEN), primary_key=True),  # 办件编号 (projectNo)
    Column("item_code", String(CODE_LEN), ForeignKey("items.item_code"), nullable=True),
    Column("item_name", String(NAME_LEN), nullable=True),
    Column("dept_code", String(18), ForeignKey("departments.dept_code"), nullable=True),
    Column("window_id", String(ID_LEN), nullable=True),
    Column("staff_id", String(ID_LEN), nullable=True),
    Column("applicant_user_type", String(16), nullable=True),
    Column("applicant_name_masked", String(ID_LEN), nullable=True),
    Column("applicant_phone_masked", String(ID_LEN), nullable=True),
    Column("applicant_real_name", Boolean, nullable=True),
    Column("opened_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("invited", Boolean, nullable=True),
    Column("cancelled_at", UTCDateTime, nullable=True),
    Column("first_event_at", UTCDateTime, nullable=False),
    # The case's first case rating (assess_number 1, not a repeat or unsolicited press), and
    # its first not given by the default rule: kept by ingest (hub.ingest.service), so
    # coverage (hub.metrics) and the default-rating job (hub.jobs) read one row per case
    # instead of probing the ratings. A rating that arrives before its case's events creates
    # the row (first_event_at is then the rating's time).
    Column("first_rated_at", UTCDateTime, nullable=True),
    Column("first_active_rated_at", UTCDateTime, nullable=True),
    # metrics: the cases finished in a period, with what coverage per department counts, so
    # the coverage query reads the index alone (migration 0004; it replaces 0002's
    # ix_cases_finished_at, its prefix)
    Index(
        "ix_cases_coverage",
        "finished_at",
        "dept_code",
        "cancelled_at",
        "first_rated_at",
        "first_active_rated_at",
    ),
)

ratings = Table(
    "ratings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rating_key", String(KEY_LEN), nullable=False, unique=True),  # identity
    Column("source", String(16), nullable=False),
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), nullable=False),
    Column("window_id", String(ID_LEN), nullable=True),
    Column("staff_id", String(ID_LEN), nullable=True),
    Column("device_id", String(ID_LEN), ForeignKey("devices.device_id"), nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("origin_id", String(CODE_LEN), nullable=True),
    Column("case_no", String(CODE_LEN), nullable=True),
    Column("item_code", String(CODE_LEN), ForeignKey("items.item_code"), nullable=True),
    Column("item_name", String(NAME_LEN), nullable=True),
    Column("dept_code", String(18), ForeignKey("departments.dept_code"), nullable=True),
    Column("level", SmallInteger, nullable=False),  # GB/T 39046 A.8: 1 非常满意 … 5 非常不满意
    Column("reasons", String(200), nullable=False),  # "501,502" (evalDetail), "" for none
    Column("text", Text, nullable=True),
    Column("channel", String(16), nullable=False),
    Column("pf", SmallInteger, nullable=True),
    Column("flags", Integer, nullable=False),  # protocol RATING flag bits (docs/protocol.md)
    Column("rated_at", UTCDateTime, nullable=False),
    Column("invited_at", UTCDateTime, nullable=True),
    Column("assess_number", SmallInteger, nullable=False),
    Column("rater_name_masked", String(ID_LEN), nullable=True),
    Column("rater_phone_masked", String(ID_LEN), nullable=True),
    Column("rater_real_name", Boolean, nullable=True),
    Column("rater_user_type", String(16), nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("token_id", String(TOKEN_ID_LEN), nullable=True),  # which credential sent it
    ForeignKeyConstraint(["hall_id", "window_id"], ["windows.hall_id", "windows.window_id"]),
    ForeignKeyConstraint(
        ["hall_id", "staff_id"], ["staff_accounts.hall_id", "staff_accounts.staff_id"]
    ),
    CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),
    CheckConstraint("assess_number IN (1, 2)", name="assess_number"),
    CheckConstraint(
        "source IN ('device_press', 'qr_phone', 'default_rule', 'import')", name="source"
    ),
    Index(None, "hall_id", "rated_at"),
    # Metrics (hub.metrics; migration 0002, chosen by tests/bench/bench_hub_metrics.py): a
    # period's ratings with the counted columns, read from the index alone; a case's case
    # ratings (exclusion corrections, per-case lookups), replacing 0001's (hall_id, case_no).
    Index(
        "ix_ratings_report",
        "rated_at",
        "dept_code",
        "level",
        "source",
        "assess_number",
        "flags",
        "rater_real_name",
    ),
    Index("ix_ratings_case_probe", "hall_id", "case_no", "assess_number", "flags", "source"),
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_key", String(KEY_LEN), nullable=False, unique=True),
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), nullable=False),
    Column("event_id", String(CODE_LEN), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("window_id", String(ID_LEN), nullable=True),
    Column("staff_id", String(ID_LEN), nullable=True),
    Column("device_id", String(ID_LEN), nullable=True),
    Column("case_no", String(CODE_LEN), nullable=True),
    Column("item_code", String(CODE_LEN), nullable=True),
    Column("item_name", String(NAME_LEN), nullable=True),
    Column("dept_code", String(18), nullable=True),
    Column("applicant_user_type", String(16), nullable=True),
    Column("applicant_name_masked", String(ID_LEN), nullable=True),
    Column("applicant_phone_masked", String(ID_LEN), nullable=True),
    Column("applicant_real_name", Boolean, nullable=True),
    Column("invited", Boolean, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("token_id", String(TOKEN_ID_LEN), nullable=True),
    Index(None, "hall_id", "case_no"),
)

device_health = Table(
    "device_health",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("health_key", String(KEY_LEN), nullable=False, unique=True),
    Column("device_id", String(ID_LEN), ForeignKey("devices.device_id"), nullable=False),
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), nullable=False),
    Column("sampled_at", UTCDateTime, nullable=False),
    Column("online", Boolean, nullable=False),
    Column("window_id", String(ID_LEN), nullable=True),
    Column("kind", String(16), nullable=True),
    Column("board", String(24), nullable=True),
    Column("firmware", String(24), nullable=True),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("uptime_s", BigInteger, nullable=True),
    Column("free_heap", BigInteger, nullable=True),
    Column("outbox_depth", BigInteger, nullable=True),
    Column("outbox_dropped", BigInteger, nullable=True),
    Column("config_version", BigInteger, nullable=True),
    Column("link", String(16), nullable=True),
    Column("counters", Text, nullable=False),  # JSON object name -> count
    Column("received_at", UTCDateTime, nullable=False),
    Column("token_id", String(TOKEN_ID_LEN), nullable=True),
    Index(None, "device_id", "sampled_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(NAME_LEN), nullable=False),  # "cli:<os user>", "token:<token id>"
    Column("action", String(CODE_LEN), nullable=False),  # "hall.add", "token.issue", …
    Column("target", String(KEY_LEN), nullable=True),
    Column("detail", Text, nullable=False),  # JSON object
)

# Tables the database itself keeps append-only (triggers in the migrations).
APPEND_ONLY = (
    "ratings",
    "case_events",
    "device_health",
    "audit_log",
    "work_order_steps",  # migration 0003
    "revisit_samples",  # migration 0003
)

# A rating a verification found 误评 or 恶意: it leaves the results, stays visible to
# auditors, and the rating row itself is never touched (DOMAIN.md). Written by the 差评
# workflow (hub.workflow); read by every metrics query (hub.metrics).
rating_exclusions = Table(
    "rating_exclusions",
    metadata,
    Column("rating_id", BigId, ForeignKey("ratings.id"), primary_key=True),
    Column("outcome", String(16), nullable=False),  # "mistaken" (误评) | "malicious" (恶意)
    Column("work_order_id", BigInteger, nullable=True),
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON array of evidence references
    Column("decided_by", String(NAME_LEN), nullable=False),
    Column("approved_by", String(NAME_LEN), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    CheckConstraint("outcome IN ('mistaken', 'malicious')", name="outcome"),
)

# Per-day rating totals kept by ingest for the period reports (hub.metrics.rollup; migration
# 0004): one row per China day, dimension group and counting class, with its count.
rating_rollup = Table(
    "rating_rollup",
    metadata,
    # dim first: a report reads one dimension's rows over a range of days, contiguously
    Column("dim", String(16), primary_key=True),  # hub.metrics.rollup.ROLLUP_KEYS
    Column("day", String(10), primary_key=True),  # 'YYYY-MM-DD', China time
    Column("dept_code", String(18), primary_key=True),  # '' for none
    Column("k1", String(CODE_LEN), primary_key=True),  # the group, '' for none
    Column("k2", String(ID_LEN), primary_key=True),
    Column("is_default", SmallInteger, primary_key=True),
    Column("level", SmallInteger, primary_key=True),
    Column("assess_number", SmallInteger, primary_key=True),
    Column("repeat", SmallInteger, primary_key=True),
    Column("unsolicited", SmallInteger, primary_key=True),
    Column("real_name", SmallInteger, primary_key=True),
    Column("n", BigInteger, nullable=False),
    sqlite_with_rowid=False,  # the key is the table (half the size, one b-tree to update)
)

# Leases for jobs that must run in one hub process at a time (default ratings, warnings):
# a process takes or renews the row when it is free or expired, in one UPDATE/INSERT.
job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(CODE_LEN), primary_key=True),
    Column("holder", String(NAME_LEN), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# --- accounts and the 差评 workflow (hub.users, hub.workflow; migration 0003) ---

# Hub user accounts (hub.users): administrators, department handlers, hotline verifiers and
# auditors. Halls are not users: they hold ingest tokens (hall_credentials). Passwords are
# argon2id hashes; a disabled account keeps its row (the audit log names it).
users = Table(
    "users",
    metadata,
    Column("username", String(ID_LEN), primary_key=True),
    Column("display_name", String(NAME_LEN), nullable=False),
    Column("role", String(24), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    CheckConstraint(
        "role IN ('admin', 'dept_handler', 'hotline_verifier', 'auditor')", name="role"
    ),
)

# The departments a department handler acts for (their scope).
user_departments = Table(
    "user_departments",
    metadata,
    Column("username", String(ID_LEN), ForeignKey("users.username"), primary_key=True),
    Column("dept_code", String(18), ForeignKey("departments.dept_code"), primary_key=True),
)

# Login sessions: the bearer token's SHA-256 only (like hall tokens), expiring, revocable.
user_sessions = Table(
    "user_sessions",
    metadata,
    Column("session_id", String(TOKEN_ID_LEN), primary_key=True),
    Column("username", String(ID_LEN), ForeignKey("users.username"), nullable=False, index=True),
    Column("token_sha256", String(SHA256_HEX), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# One work order per 差评 rating (unique rating_id: two hub processes cannot both open one).
# ``state`` and the deadline columns change as the order moves (hub.workflow.machine is the
# only place that decides a move; ``version`` makes each move a compare-and-set). What
# happened, by whom and why is in work_order_steps and the audit log.
work_orders = Table(
    "work_orders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rating_id", BigId, ForeignKey("ratings.id"), nullable=False, unique=True),
    Column("hall_id", String(ID_LEN), ForeignKey("halls.hall_id"), nullable=False),
    Column("case_no", String(CODE_LEN), nullable=True),
    Column("dept_code", String(18), ForeignKey("departments.dept_code"), nullable=True),
    Column("window_id", String(ID_LEN), nullable=True),
    Column("staff_id", String(ID_LEN), nullable=True),
    Column("level", SmallInteger, nullable=False),
    Column("anonymous", Boolean, nullable=False),  # no real-name rater: no callback possible
    Column("state", String(24), nullable=False),
    Column("version", Integer, nullable=False),
    Column("policy", String(CODE_LEN), nullable=False),  # profile name@version in force
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("callback_due_at", UTCDateTime, nullable=True),
    Column("callback_warn_at", UTCDateTime, nullable=True),
    Column("rectify_due_at", UTCDateTime, nullable=True),
    Column("rectify_warn_at", UTCDateTime, nullable=True),
    Column("feedback_due_at", UTCDateTime, nullable=True),
    Column("feedback_warn_at", UTCDateTime, nullable=True),
    Column("report_due_at", UTCDateTime, nullable=True),
    Column("report_warn_at", UTCDateTime, nullable=True),
    Column("deadline_error", Text, nullable=True),  # why a deadline could not be computed
    Column("appeals", SmallInteger, nullable=False),
    Column("reopened", SmallInteger, nullable=False),
    Column("follow_up_rating_id", BigInteger, nullable=True),
    Index(None, "state", "dept_code"),
    Index(None, "hall_id", "case_no"),
)

# Every move of a work order: append-only (trigger), the order's history.
work_order_steps = Table(
    "work_order_steps",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("work_order_id", BigId, ForeignKey("work_orders.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(NAME_LEN), nullable=False),
    Column("role", String(24), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(24), nullable=True),
    Column("to_state", String(24), nullable=False),
    Column("reason", Text, nullable=True),
    Column("fields", Text, nullable=False),  # JSON object of the step's required fields
)

# Random revisit samples of 差评 (DOMAIN.md: at least the policy's share): the seed and the
# population are recorded, so anyone can draw the same sample again.
revisit_samples = Table(
    "revisit_samples",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("drawn_at", UTCDateTime, nullable=False),
    Column("drawn_by", String(NAME_LEN), nullable=False),
    Column("period_from", UTCDateTime, nullable=False),
    Column("period_to", UTCDateTime, nullable=False),
    Column("percent", SmallInteger, nullable=False),
    Column("seed", String(40), nullable=False),
    Column("population", Text, nullable=False),  # JSON array of work order ids, ascending
    Column("chosen", Text, nullable=False),  # JSON array of work order ids, ascending
)
