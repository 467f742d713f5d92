-- Inventory: the catalog, lots with a kept balance guarded by constraints,
-- an append-only stock ledger, reservations, stocktakes and recalls.

CREATE TABLE products (
    gtin           TEXT PRIMARY KEY CHECK (length(gtin) = 14),
    name           TEXT NOT NULL,
    ingredients    TEXT NOT NULL,
    strength       TEXT NOT NULL,
    form           TEXT NOT NULL,
    pack_size      BIGINT NOT NULL CHECK (pack_size > 0),
    atc            TEXT,
    controlled     BIGINT NOT NULL DEFAULT 0,
    storage        TEXT NOT NULL CHECK (storage IN ('room', 'fridge', 'frozen')),
    price_minor    BIGINT NOT NULL CHECK (price_minor >= 0),
    vat_class      TEXT NOT NULL CHECK (vat_class IN ('standard', 'reduced', 'zero')),
    generics       TEXT NOT NULL DEFAULT '',
    reorder_point  BIGINT NOT NULL DEFAULT 0 CHECK (reorder_point >= 0),
    max_daily_mg   BIGINT,
    updated_ms     BIGINT NOT NULL
);
CREATE INDEX products_name ON products (name);

INSERT INTO stock_locations (id, name, kind, created_ms) VALUES
    ('shelf', 'Shelf', 'shelf', 0),
    ('quarantine', 'Quarantine', 'quarantine', 0)
ON CONFLICT (id) DO NOTHING;

ALTER TABLE lots ADD COLUMN gtin TEXT REFERENCES products(gtin);
ALTER TABLE lots ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lots ADD COLUMN hold_reason TEXT;
ALTER TABLE lots ADD COLUMN hold_note TEXT;
ALTER TABLE lots ADD COLUMN received_ms BIGINT NOT NULL DEFAULT 0;
UPDATE lots SET hold_reason = 'cold_chain_excursion' WHERE hold_alarm_id IS NOT NULL;
ALTER TABLE lots ADD CONSTRAINT lots_quantity_nonnegative CHECK (quantity >= 0);
ALTER TABLE lots ADD CONSTRAINT lots_reserved_within CHECK (reserved >= 0 AND reserved <= quantity);
ALTER TABLE lots ADD CONSTRAINT lots_status_known
    CHECK (status IN ('available', 'on_hold', 'recalled', 'expired', 'discarded'));
CREATE INDEX lots_gtin ON lots (gtin, status, expiry);
CREATE INDEX lots_batch ON lots (gtin, lot);

CREATE TABLE stock_moves (
    id              BIGSERIAL PRIMARY KEY,
    at_ms           BIGINT NOT NULL,
    lot_id          BIGINT NOT NULL REFERENCES lots(id),
    kind            TEXT NOT NULL CHECK (kind IN ('receipt', 'reservation', 'release', 'dispense',
                        'dispense_unreserved', 'adjustment', 'transfer_out', 'transfer_in', 'write_off')),
    qty_delta       BIGINT NOT NULL,
    reserved_delta  BIGINT NOT NULL,
    on_hand_after   BIGINT NOT NULL CHECK (on_hand_after >= 0),
    reserved_after  BIGINT NOT NULL CHECK (reserved_after >= 0),
    actor           TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    order_ref       TEXT,
    patient         TEXT,
    other_lot       BIGINT
);
CREATE INDEX stock_moves_lot ON stock_moves (lot_id, id);
CREATE INDEX stock_moves_kind ON stock_moves (kind, at_ms);
CREATE FUNCTION stock_moves_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'stock_moves is append-only';
END
$$;
CREATE TRIGGER stock_moves_no_change BEFORE UPDATE OR DELETE ON stock_moves
    FOR EACH ROW EXECUTE FUNCTION stock_moves_append_only();

-- Lots that existed before the ledger get an opening line, so ledger sums match.
INSERT INTO stock_moves (at_ms, lot_id, kind, qty_delta, reserved_delta, on_hand_after,
                         reserved_after, actor, reason)
    SELECT 0, id, 'receipt', quantity, 0, quantity, 0, 'migration', 'opening balance'
    FROM lots WHERE quantity > 0;

CREATE TABLE reservations (
    id          BIGSERIAL PRIMARY KEY,
    order_ref   TEXT NOT NULL,
    lot_id      BIGINT NOT NULL REFERENCES lots(id),
    qty         BIGINT NOT NULL CHECK (qty > 0),
    state       TEXT NOT NULL CHECK (state IN ('active', 'released', 'dispensed')),
    actor       TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    closed_ms   BIGINT
);
CREATE INDEX reservations_order ON reservations (order_ref);
CREATE INDEX reservations_lot ON reservations (lot_id, state);

CREATE TABLE stocktakes (
    id        BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    note      TEXT NOT NULL,
    lines     TEXT NOT NULL
);

CREATE TABLE recalls (
    id        BIGSERIAL PRIMARY KEY,
    gtin      TEXT NOT NULL,
    batch     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    lots      BIGINT NOT NULL
);
