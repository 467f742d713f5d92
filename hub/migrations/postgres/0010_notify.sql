-- Patient notifications (opt-in per patient): how to reach the patient, and
-- a durable outbox of messages with their attempts, so a failed send is
-- retried and its status shows on the order page.

ALTER TABLE patients ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE patients ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE patients ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE patients ADD COLUMN notify_channel TEXT NOT NULL DEFAULT ''
    CHECK (notify_channel IN ('', 'email', 'sms', 'whatsapp'));

CREATE TABLE notifications (
    id           BIGSERIAL PRIMARY KEY,
    order_id     TEXT NOT NULL REFERENCES orders(id),
    patient_id   TEXT REFERENCES patients(id),
    kind         TEXT NOT NULL CHECK (kind IN ('ready', 'needs_word')),
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
    recipient    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at_ms   BIGINT NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    actor        TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    sent_ms      BIGINT
);
CREATE INDEX notifications_due ON notifications (state, next_at_ms);
CREATE INDEX notifications_order ON notifications (order_id);
