-- Cold chain: readings, alarms with their audit trail, stock locations and lots
-- (the minimal hold/release part of inventory), logger imports.
CREATE TABLE fridge_readings (
    fridge      TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    kiosk_id    TEXT NOT NULL,
    celsius     REAL,
    historical  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (fridge, at_ms)
);

CREATE TABLE door_events (
    fridge      TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    kiosk_id    TEXT NOT NULL,
    open        INTEGER NOT NULL,
    PRIMARY KEY (fridge, at_ms)
);

CREATE TABLE alarms (
    id               TEXT PRIMARY KEY,
    fridge           TEXT NOT NULL,
    kiosk_id         TEXT NOT NULL,
    rule             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL,
    start_ms         INTEGER NOT NULL,
    onset_ms         INTEGER NOT NULL,
    end_ms           INTEGER,
    peak_c           REAL,
    rules_json       TEXT NOT NULL,
    ack_by           TEXT,
    ack_reason       TEXT,
    ack_comment      TEXT,
    ack_ms           INTEGER,
    notified_ms      INTEGER,
    escalated_ms     INTEGER,
    created_ms       INTEGER NOT NULL
);
CREATE INDEX alarms_state ON alarms (state, onset_ms);
CREATE INDEX alarms_fridge ON alarms (fridge, onset_ms);

CREATE TABLE alarm_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_id  TEXT NOT NULL REFERENCES alarms(id),
    at_ms     INTEGER NOT NULL,
    action    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX alarm_log_alarm ON alarm_log (alarm_id, id);

CREATE TABLE stock_locations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE lots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    location_id   TEXT NOT NULL REFERENCES stock_locations(id),
    product       TEXT NOT NULL,
    lot           TEXT NOT NULL,
    expiry        TEXT NOT NULL,
    quantity      INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'available',
    hold_alarm_id TEXT,
    hold_ms       INTEGER,
    decided_by    TEXT,
    decision_note TEXT,
    decided_ms    INTEGER
);
CREATE INDEX lots_location ON lots (location_id, status);

CREATE TABLE logger_days (
    fridge       TEXT NOT NULL,
    serial       TEXT NOT NULL,
    day          TEXT NOT NULL,
    min_c        REAL,
    max_c        REAL,
    avg_c        REAL,
    minutes_out  TEXT NOT NULL,
    alarms       TEXT NOT NULL,
    imported_ms  INTEGER NOT NULL,
    PRIMARY KEY (serial, day)
);
