-- Inventory: the catalog, lots with a kept balance guarded by constraints,
-- an append-only stock ledger, reservations, stocktakes and recalls.

CREATE TABLE products (
    gtin           TEXT PRIMARY KEY CHECK (length(gtin) = 14),
    name           TEXT NOT NULL,
    ingredients    TEXT NOT NULL,
    strength       TEXT NOT NULL,
    form           TEXT NOT NULL,
    pack_size      INTEGER NOT NULL CHECK (pack_size > 0),
    atc            TEXT,
    controlled     INTEGER NOT NULL DEFAULT 0,
    storage        TEXT NOT NULL CHECK (storage IN ('room', 'fridge', 'frozen')),
    price_minor    INTEGER NOT NULL CHECK (price_minor >= 0),
    vat_class      TEXT NOT NULL CHECK (vat_class IN ('standard', 'reduced', 'zero')),
    generics       TEXT NOT NULL DEFAULT '',
    reorder_point  INTEGER NOT NULL DEFAULT 0 CHECK (reorder_point >= 0),
    max_daily_mg   INTEGER,
    updated_ms     INTEGER NOT NULL
);
CREATE INDEX products_name ON products (name);

INSERT INTO stock_locations (id, name, kind, created_ms) VALUES
    ('shelf', 'Shelf', 'shelf', 0),
    ('quarantine', 'Quarantine', 'quarantine', 0)
ON CONFLICT (id) DO NOTHING;

-- SQLite cannot add CHECK constraints to a table, so lots is rebuilt.
CREATE TABLE lots_v3 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    location_id   TEXT NOT NULL REFERENCES stock_locations(id),
    gtin          TEXT REFERENCES products(gtin),
    product       TEXT NOT NULL,
    lot           TEXT NOT NULL,
    expiry        TEXT NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity >= 0),
    reserved      INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= quantity),
    status        TEXT NOT NULL DEFAULT 'available'
                  CHECK (status IN ('available', 'on_hold', 'recalled', 'expired', 'discarded')),
    hold_reason   TEXT,
    hold_note     TEXT,
    hold_alarm_id TEXT,
    hold_ms       INTEGER,
    decided_by    TEXT,
    decision_note TEXT,
    decided_ms    INTEGER,
    received_ms   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO lots_v3 (id, location_id, product, lot, expiry, quantity, status, hold_reason,
                     hold_alarm_id, hold_ms, decided_by, decision_note, decided_ms)
    SELECT id, location_id, product, lot, expiry, quantity, status,
           CASE WHEN hold_alarm_id IS NOT NULL THEN 'cold_chain_excursion' END,
           hold_alarm_id, hold_ms, decided_by, decision_note, decided_ms
    FROM lots;
DROP TABLE lots;
ALTER TABLE lots_v3 RENAME TO lots;
CREATE INDEX lots_location ON lots (location_id, status);
CREATE INDEX lots_gtin ON lots (gtin, status, expiry);
CREATE INDEX lots_batch ON lots (gtin, lot);

CREATE TABLE stock_moves (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms           INTEGER NOT NULL,
    lot_id          INTEGER NOT NULL REFERENCES lots(id),
    kind            TEXT NOT NULL CHECK (kind IN ('receipt', 'reservation', 'release', 'dispense',
                        'dispense_unreserved', 'adjustment', 'transfer_out', 'transfer_in', 'write_off')),
    qty_delta       INTEGER NOT NULL,
    reserved_delta  INTEGER NOT NULL,
    on_hand_after   INTEGER NOT NULL CHECK (on_hand_after >= 0),
    reserved_after  INTEGER NOT NULL CHECK (reserved_after >= 0),
    actor           TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    order_ref       TEXT,
    patient         TEXT,
    other_lot       INTEGER
);
CREATE INDEX stock_moves_lot ON stock_moves (lot_id, id);
CREATE INDEX stock_moves_kind ON stock_moves (kind, at_ms);
CREATE TRIGGER stock_moves_no_update BEFORE UPDATE ON stock_moves
BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;
CREATE TRIGGER stock_moves_no_delete BEFORE DELETE ON stock_moves
BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;

-- Lots that existed before the ledger get an opening line, so ledger sums match.
INSERT INTO stock_moves (at_ms, lot_id, kind, qty_delta, reserved_delta, on_hand_after,
                         reserved_after, actor, reason)
    SELECT 0, id, 'receipt', quantity, 0, quantity, 0, 'migration', 'opening balance'
    FROM lots WHERE quantity > 0;

CREATE TABLE reservations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_ref   TEXT NOT NULL,
    lot_id      INTEGER NOT NULL REFERENCES lots(id),
    qty         INTEGER NOT NULL CHECK (qty > 0),
    state       TEXT NOT NULL CHECK (state IN ('active', 'released', 'dispensed')),
    actor       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    closed_ms   INTEGER
);
CREATE INDEX reservations_order ON reservations (order_ref);
CREATE INDEX reservations_lot ON reservations (lot_id, state);

CREATE TABLE stocktakes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    note      TEXT NOT NULL,
    lines     TEXT NOT NULL
);

CREATE TABLE recalls (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    gtin      TEXT NOT NULL,
    batch     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    lots      INTEGER NOT NULL
);
