-- Billing: insurance plans, invoices with gapless numbers per store and
-- year (assigned in the transaction that finalises the invoice), credit
-- notes as the only correction, and payments.

CREATE TABLE insurance_plans (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    insurer      TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('not_covered', 'copay', 'coinsurance')),
    per_line     INTEGER NOT NULL DEFAULT 0 CHECK (per_line >= 0),
    share_bp     INTEGER NOT NULL DEFAULT 0 CHECK (share_bp BETWEEN 0 AND 10000),
    annual_cap   INTEGER NOT NULL DEFAULT 0 CHECK (annual_cap >= 0),
    created_ms   INTEGER NOT NULL
);

ALTER TABLE patients ADD COLUMN plan_id TEXT REFERENCES insurance_plans(id);

CREATE TABLE invoice_seq (
    store  TEXT NOT NULL,
    year   INTEGER NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (store, year)
);

CREATE TABLE invoices (
    id             TEXT PRIMARY KEY,
    number         TEXT NOT NULL UNIQUE,
    store          TEXT NOT NULL,
    year           INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    order_id       TEXT NOT NULL REFERENCES orders(id),
    credits        TEXT REFERENCES invoices(id),
    patient_id     TEXT REFERENCES patients(id),
    patient_name   TEXT NOT NULL,
    insurer        TEXT NOT NULL DEFAULT '',
    plan           TEXT NOT NULL,
    total          INTEGER NOT NULL,
    vat            INTEGER NOT NULL,
    patient_share  INTEGER NOT NULL,
    insurer_share  INTEGER NOT NULL,
    toward_cap     INTEGER NOT NULL DEFAULT 0,
    reason         TEXT NOT NULL DEFAULT '',
    finalised_ms   INTEGER NOT NULL,
    actor          TEXT NOT NULL
);
CREATE UNIQUE INDEX invoices_seq ON invoices (store, year, seq);
CREATE UNIQUE INDEX invoices_one_per_order ON invoices (order_id) WHERE kind = 'invoice';
CREATE UNIQUE INDEX invoices_one_credit ON invoices (credits) WHERE credits IS NOT NULL;
CREATE INDEX invoices_day ON invoices (finalised_ms);

CREATE TABLE invoice_lines (
    invoice_id  TEXT NOT NULL REFERENCES invoices(id),
    n           INTEGER NOT NULL,
    label       TEXT NOT NULL,
    packs       INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    vat         INTEGER NOT NULL,
    vat_bp      INTEGER NOT NULL,
    patient     INTEGER NOT NULL,
    insurer     INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, n)
);

CREATE TABLE payments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id  TEXT NOT NULL REFERENCES invoices(id),
    method      TEXT NOT NULL CHECK (method IN ('cash', 'card', 'insurer')),
    amount      INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id);
CREATE INDEX payments_day ON payments (at_ms);
