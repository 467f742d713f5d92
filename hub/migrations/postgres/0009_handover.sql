-- Packs scanned at the desk while handing an order over: each accepted scan
-- counts for one reserved lot; refused scans are kept too, with the reason
-- (a wrong lot offered to a patient is worth knowing about).

CREATE TABLE handover_scans (
    id            BIGSERIAL PRIMARY KEY,
    order_id      TEXT NOT NULL REFERENCES orders(id),
    reservation   BIGINT REFERENCES reservations(id),
    code          TEXT NOT NULL,
    serial        TEXT,
    accepted      BIGINT NOT NULL,
    message       TEXT NOT NULL,
    actor         TEXT NOT NULL,
    at_ms         BIGINT NOT NULL
);
CREATE INDEX handover_scans_order ON handover_scans (order_id, id);
