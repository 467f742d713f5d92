-- Corrections of OCR drafts: every changed field with its old and new value,
-- who and when. Append-only; the draft itself holds the current values.
CREATE TABLE ocr_edits (
    id         BIGSERIAL PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES ocr_jobs(id),
    field      TEXT NOT NULL,
    old_value  TEXT NOT NULL,
    new_value  TEXT NOT NULL,
    actor      TEXT NOT NULL,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX ocr_edits_job ON ocr_edits (job_id, id);
CREATE FUNCTION ocr_edits_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ocr_edits is append-only';
END
$$;
CREATE TRIGGER ocr_edits_no_change BEFORE UPDATE OR DELETE ON ocr_edits
    FOR EACH ROW EXECUTE FUNCTION ocr_edits_append_only();
