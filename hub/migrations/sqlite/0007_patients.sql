-- Patient records (minimal: name, date of birth, allergies, insurance),
-- made or matched from eMediplan data or entered at the desk; duplicates
-- are merged (the merged record points at the one that stays), never deleted.
-- Order lines gain their dosage instructions, which the dose check reads.

CREATE TABLE patients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    birth_date   TEXT NOT NULL DEFAULT '',
    match_key    TEXT NOT NULL,
    allergies    TEXT NOT NULL DEFAULT '[]',
    insurance    TEXT NOT NULL DEFAULT '',
    merged_into  TEXT REFERENCES patients(id),
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
);
CREATE INDEX patients_match ON patients (match_key);

CREATE TABLE patient_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    at_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX patient_log_patient ON patient_log (patient_id, id);

ALTER TABLE orders ADD COLUMN patient_id TEXT REFERENCES patients(id);
CREATE INDEX orders_patient ON orders (patient_id);
ALTER TABLE order_lines ADD COLUMN sig TEXT NOT NULL DEFAULT '';
