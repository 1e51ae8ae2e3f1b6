"""The store's schema, as an ordered list of migrations.

Strategy: the schema only moves forward. Each migration is a version number and the SQL
that brings version n-1 to n; ``store.migrate`` applies the missing ones in one transaction
each and records them in ``schema_version``. The store is never dropped or recreated, not on
upgrade and not on reconfiguration (DESIGN.md, edge buffer): a new column is an
``ALTER TABLE``, a new table a ``CREATE``. Tests open a store written by version 1 and check
that every later migration keeps its rows.

Times are integer milliseconds since the Unix epoch (UTC), from the agent's clock. Device
keys and the QR secret live in their own columns/tables and are never selected by the
views that feed logs, metrics or the API.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE staff (
    staff_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    number     TEXT NOT NULL,
    title      TEXT,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE windows (
    window_id      TEXT PRIMARY KEY,
    label          TEXT NOT NULL,
    staff_id       TEXT REFERENCES staff (staff_id),
    signed_in_ms   INTEGER,
    paused         INTEGER NOT NULL DEFAULT 0,
    pause_reason   TEXT,
    paused_ms      INTEGER,
    config_version INTEGER NOT NULL DEFAULT 1,
    created_ms     INTEGER NOT NULL
);
-- 一码一账号: a staff account is signed in at one window at most.
CREATE UNIQUE INDEX windows_one_staff ON windows (staff_id) WHERE staff_id IS NOT NULL;
CREATE TABLE devices (
    device_id      TEXT PRIMARY KEY,
    kind           INTEGER,
    board          TEXT,
    firmware       TEXT,
    window_id      TEXT REFERENCES windows (window_id),
    key            BLOB,
    quarantine     TEXT,
    min_session    INTEGER NOT NULL DEFAULT 0,
    committed_seq  INTEGER NOT NULL DEFAULT 0,
    online         INTEGER NOT NULL DEFAULT 0,
    link           TEXT,
    last_seen_ms   INTEGER,
    outbox_depth   INTEGER,
    outbox_dropped INTEGER,
    uptime_s       INTEGER,
    free_heap      INTEGER,
    config_version INTEGER,
    errors         TEXT NOT NULL DEFAULT '[]',
    refused        TEXT NOT NULL DEFAULT '{}',
    added_ms       INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL
);
CREATE TABLE cases (
    case_no        TEXT PRIMARY KEY,
    window_id      TEXT NOT NULL REFERENCES windows (window_id),
    staff_id       TEXT,
    item_code      TEXT,
    item_name      TEXT,
    dept_code      TEXT,
    applicant_type TEXT NOT NULL,
    name_masked    TEXT,
    phone_masked   TEXT,
    state          TEXT NOT NULL,
    opened_ms      INTEGER NOT NULL,
    finished_ms    INTEGER,
    closed_ms      INTEGER,
    invite_id      INTEGER
);
CREATE INDEX cases_by_window ON cases (window_id, state);
CREATE TABLE invites (
    invite_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    case_no        TEXT NOT NULL REFERENCES cases (case_no),
    window_id      TEXT NOT NULL REFERENCES windows (window_id),
    staff_id       TEXT,
    opened_ms      INTEGER NOT NULL,
    deadline_ms    INTEGER NOT NULL,
    closed_ms      INTEGER,
    close_reason   TEXT,
    delivered_ms   INTEGER,
    hub_event      TEXT,
    counted_device TEXT,
    counted_seq    INTEGER
);
CREATE INDEX invites_open ON invites (window_id) WHERE closed_ms IS NULL;
CREATE TABLE ratings (
    device_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    level       INTEGER NOT NULL,
    reasons     TEXT NOT NULL,
    flags       INTEGER NOT NULL,
    binding     TEXT NOT NULL,
    too_fast    INTEGER NOT NULL DEFAULT 0,
    invite_id   INTEGER,
    case_no     TEXT,
    window_id   TEXT,
    staff_id    TEXT,
    press_ms    INTEGER NOT NULL,
    time_source TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    boot        INTEGER NOT NULL,
    ticks       INTEGER NOT NULL,
    device_time INTEGER,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX ratings_by_case ON ratings (case_no);
CREATE INDEX ratings_by_window ON ratings (window_id, binding);
CREATE TABLE gaps (
    device_id TEXT NOT NULL,
    first     INTEGER NOT NULL,
    last      INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (device_id, first)
);
CREATE TABLE events (
    event_id TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
);
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX outbox_by_age ON outbox (created_ms);
""",
    ),
    (
        2,
        """
-- Hub sync (edge_agent.sync): items the hub rejected, moved out of the outbox with the
-- hub's error so they never block or get resent: the hall administrator reads them here.
CREATE TABLE outbox_rejected (
    key         TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    rejected_ms INTEGER NOT NULL,
    code        TEXT NOT NULL,
    error       TEXT NOT NULL
);
-- sync reads one kind at a time (one endpoint per kind) in queue order
CREATE INDEX outbox_by_kind ON outbox (kind, id);
""",
    ),
    (
        3,
        """
-- Provisioning (hcp provision, docs/technician.md): which factory board carries a device
-- identity, when it was provisioned and retired. A retired device keeps its row (its
-- ratings name it) but loses its key and window.
ALTER TABLE devices ADD COLUMN factory_id TEXT;
ALTER TABLE devices ADD COLUMN provisioned_ms INTEGER;
ALTER TABLE devices ADD COLUMN retired_ms INTEGER;
CREATE UNIQUE INDEX devices_factory ON devices (factory_id)
    WHERE factory_id IS NOT NULL AND retired_ms IS NULL;
ALTER TABLE staff ADD COLUMN department TEXT;
-- 一码一账号: the staff account whose static QR code and evaluator sit at a window. Not the
-- sign-in (windows.staff_id, from the case system): the position the labels are printed for.
CREATE TABLE positions (
    window_id TEXT PRIMARY KEY REFERENCES windows (window_id),
    staff_id  TEXT NOT NULL REFERENCES staff (staff_id),
    since_ms  INTEGER NOT NULL
);
CREATE UNIQUE INDEX positions_one_staff ON positions (staff_id);
-- Append-only history of provisioning, bindings, re-bindings, retirements, replacements.
CREATE TABLE binding_history (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    event     TEXT NOT NULL,
    device_id TEXT,
    window_id TEXT,
    staff_id  TEXT,
    detail    TEXT
);
CREATE INDEX binding_history_by_window ON binding_history (window_id, at_ms);
""",
    ),
)

LATEST = MIGRATIONS[-1][0]
