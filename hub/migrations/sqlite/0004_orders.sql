-- Orders: one per prescription that arrives (kiosk QR or paper photo), its
-- lines, and an append-only audit trail of every transition.

CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    reference       TEXT NOT NULL,
    source_kiosk    TEXT,
    source_event    TEXT UNIQUE,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    patient         TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL CHECK (state IN ('received', 'in_review', 'approved', 'filling',
                        'ready', 'picked_up', 'rejected', 'cancelled', 'returned_to_stock')),
    reviewer        TEXT,
    ready_since_ms  INTEGER,
    ticket          TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX orders_state ON orders (state, created_ms);

CREATE TABLE order_lines (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    TEXT NOT NULL REFERENCES orders(id),
    gtin        TEXT NOT NULL REFERENCES products(gtin),
    packs       INTEGER NOT NULL CHECK (packs > 0),
    note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX order_lines_order ON order_lines (order_id);

CREATE TABLE order_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    TEXT NOT NULL REFERENCES orders(id),
    at_ms       INTEGER NOT NULL,
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX order_log_order ON order_log (order_id, id);
CREATE TRIGGER order_log_no_update BEFORE UPDATE ON order_log
BEGIN SELECT RAISE(ABORT, 'order_log is append-only'); END;
CREATE TRIGGER order_log_no_delete BEFORE DELETE ON order_log
BEGIN SELECT RAISE(ABORT, 'order_log is append-only'); END;

-- Orders are made from committed events; this is how far that has got.
CREATE TABLE orders_sync (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_commit_id  INTEGER NOT NULL
);
INSERT INTO orders_sync (id, last_commit_id) VALUES (1, 0);
