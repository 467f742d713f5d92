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
    ready_since_ms  BIGINT,
    ticket          TEXT,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);
CREATE INDEX orders_state ON orders (state, created_ms);

CREATE TABLE order_lines (
    id          BIGSERIAL PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders(id),
    gtin        TEXT NOT NULL REFERENCES products(gtin),
    packs       BIGINT NOT NULL CHECK (packs > 0),
    note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX order_lines_order ON order_lines (order_id);

CREATE TABLE order_log (
    id          BIGSERIAL PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders(id),
    at_ms       BIGINT NOT NULL,
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX order_log_order ON order_log (order_id, id);
CREATE FUNCTION order_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_log is append-only';
END
$$;
CREATE TRIGGER order_log_no_change BEFORE UPDATE OR DELETE ON order_log
    FOR EACH ROW EXECUTE FUNCTION order_log_append_only();

-- Orders are made from committed events; this is how far that has got.
CREATE TABLE orders_sync (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    last_commit_id  BIGINT NOT NULL
);
INSERT INTO orders_sync (id, last_commit_id) VALUES (1, 0);
