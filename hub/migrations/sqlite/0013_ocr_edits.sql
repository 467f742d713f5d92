-- Corrections of OCR drafts: every changed field with its old and new value,
-- who and when. Append-only; the draft itself holds the current values.
CREATE TABLE ocr_edits (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT NOT NULL REFERENCES ocr_jobs(id),
    field      TEXT NOT NULL,
    old_value  TEXT NOT NULL,
    new_value  TEXT NOT NULL,
    actor      TEXT NOT NULL,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX ocr_edits_job ON ocr_edits (job_id, id);
CREATE TRIGGER ocr_edits_no_update BEFORE UPDATE ON ocr_edits
BEGIN SELECT RAISE(ABORT, 'ocr_edits is append-only'); END;
CREATE TRIGGER ocr_edits_no_delete BEFORE DELETE ON ocr_edits
BEGIN SELECT RAISE(ABORT, 'ocr_edits is append-only'); END;
