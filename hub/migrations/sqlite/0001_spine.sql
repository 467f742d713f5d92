-- Spine: kiosks, committed events, dead letters.
CREATE TABLE kiosks (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    public_key          TEXT,
    enroll_code_hash    TEXT,
    enroll_expires_ms   INTEGER,
    enrolled_ms         INTEGER,
    revoked             INTEGER NOT NULL DEFAULT 0,
    last_seq_events     INTEGER NOT NULL DEFAULT 0,
    last_seq_telemetry  INTEGER NOT NULL DEFAULT 0,
    config_version      INTEGER NOT NULL DEFAULT 0,
    config_json         TEXT,
    online              INTEGER NOT NULL DEFAULT 0,
    last_seen_ms        INTEGER,
    running_version     INTEGER,
    outbox_json         TEXT,
    created_ms          INTEGER NOT NULL
);

CREATE TABLE events (
    commit_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    kiosk_id     TEXT NOT NULL REFERENCES kiosks(id),
    event_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    historical   INTEGER NOT NULL,
    digest       TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    sig          TEXT NOT NULL,
    UNIQUE (kiosk_id, event_id)
);
CREATE INDEX events_kiosk_seq ON events (kiosk_id, seq);

CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms  INTEGER NOT NULL,
    topic        TEXT NOT NULL,
    kiosk_id     TEXT,
    event_id     TEXT,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    payload      BLOB NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason);
