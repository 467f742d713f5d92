-- Billing: insurance plans, invoices with gapless numbers per store and
-- year (assigned in the transaction that finalises the invoice), credit
-- notes as the only correction, and payments.

CREATE TABLE insurance_plans (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    insurer      TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('not_covered', 'copay', 'coinsurance')),
    per_line     BIGINT NOT NULL DEFAULT 0 CHECK (per_line >= 0),
    share_bp     BIGINT NOT NULL DEFAULT 0 CHECK (share_bp BETWEEN 0 AND 10000),
    annual_cap   BIGINT NOT NULL DEFAULT 0 CHECK (annual_cap >= 0),
    created_ms   BIGINT NOT NULL
);

ALTER TABLE patients ADD COLUMN plan_id TEXT REFERENCES insurance_plans(id);

CREATE TABLE invoice_seq (
    store  TEXT NOT NULL,
    year   BIGINT NOT NULL,
    last   BIGINT NOT NULL,
    PRIMARY KEY (store, year)
);

CREATE TABLE invoices (
    id             TEXT PRIMARY KEY,
    number         TEXT NOT NULL UNIQUE,
    store          TEXT NOT NULL,
    year           BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    order_id       TEXT NOT NULL REFERENCES orders(id),
    credits        TEXT REFERENCES invoices(id),
    patient_id     TEXT REFERENCES patients(id),
    patient_name   TEXT NOT NULL,
    insurer        TEXT NOT NULL DEFAULT '',
    plan           TEXT NOT NULL,
    total          BIGINT NOT NULL,
    vat            BIGINT NOT NULL,
    patient_share  BIGINT NOT NULL,
    insurer_share  BIGINT NOT NULL,
    toward_cap     BIGINT NOT NULL DEFAULT 0,
    reason         TEXT NOT NULL DEFAULT '',
    finalised_ms   BIGINT NOT NULL,
    actor          TEXT NOT NULL
);
CREATE UNIQUE INDEX invoices_seq ON invoices (store, year, seq);
CREATE UNIQUE INDEX invoices_one_per_order ON invoices (order_id) WHERE kind = 'invoice';
CREATE UNIQUE INDEX invoices_one_credit ON invoices (credits) WHERE credits IS NOT NULL;
CREATE INDEX invoices_day ON invoices (finalised_ms);

CREATE TABLE invoice_lines (
    invoice_id  TEXT NOT NULL REFERENCES invoices(id),
    n           BIGINT NOT NULL,
    label       TEXT NOT NULL,
    packs       BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    vat         BIGINT NOT NULL,
    vat_bp      BIGINT NOT NULL,
    patient     BIGINT NOT NULL,
    insurer     BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, n)
);

CREATE TABLE payments (
    id          BIGSERIAL PRIMARY KEY,
    invoice_id  TEXT NOT NULL REFERENCES invoices(id),
    method      TEXT NOT NULL CHECK (method IN ('cash', 'card', 'insurer')),
    amount      BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    actor       TEXT NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id);
CREATE INDEX payments_day ON payments (at_ms);
