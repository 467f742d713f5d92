-- Spine: kiosks, committed events, dead letters.
CREATE TABLE kiosks (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    public_key          TEXT,
    enroll_code_hash    TEXT,
    enroll_expires_ms   BIGINT,
    enrolled_ms         BIGINT,
    revoked             BIGINT NOT NULL DEFAULT 0,
    last_seq_events     BIGINT NOT NULL DEFAULT 0,
    last_seq_telemetry  BIGINT NOT NULL DEFAULT 0,
    config_version      BIGINT NOT NULL DEFAULT 0,
    config_json         TEXT,
    online              BIGINT NOT NULL DEFAULT 0,
    last_seen_ms        BIGINT,
    running_version     BIGINT,
    outbox_json         TEXT,
    created_ms          BIGINT NOT NULL
);

CREATE TABLE events (
    commit_id    BIGSERIAL PRIMARY KEY,
    kiosk_id     TEXT NOT NULL REFERENCES kiosks(id),
    event_id     TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    received_ms  BIGINT NOT NULL,
    historical   BIGINT NOT NULL,
    digest       TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    sig          TEXT NOT NULL,
    UNIQUE (kiosk_id, event_id)
);
CREATE INDEX events_kiosk_seq ON events (kiosk_id, seq);

CREATE TABLE dead_letters (
    id           BIGSERIAL PRIMARY KEY,
    received_ms  BIGINT NOT NULL,
    topic        TEXT NOT NULL,
    kiosk_id     TEXT,
    event_id     TEXT,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    payload      BYTEA NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason);
