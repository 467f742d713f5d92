-- Packs scanned at the desk while handing an order over: each accepted scan
-- counts for one reserved lot; refused scans are kept too, with the reason
-- (a wrong lot offered to a patient is worth knowing about).

CREATE TABLE handover_scans (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id      TEXT NOT NULL REFERENCES orders(id),
    reservation   INTEGER REFERENCES reservations(id),
    code          TEXT NOT NULL,
    serial        TEXT,
    accepted      INTEGER NOT NULL,
    message       TEXT NOT NULL,
    actor         TEXT NOT NULL,
    at_ms         INTEGER NOT NULL
);
CREATE INDEX handover_scans_order ON handover_scans (order_id, id);
