-- OCR jobs: a durable queue in the store, so a restart loses none. A job
-- drafts one paper order (from a kiosk) or reads a desk upload. Failed jobs
-- stay, with their error, until someone retries them.

CREATE TABLE ocr_jobs (
    id           TEXT PRIMARY KEY,
    order_id     TEXT REFERENCES orders(id),
    blob_sha     TEXT NOT NULL,
    filename     TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL CHECK (source IN ('kiosk', 'upload')),
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    stage        TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at_ms   INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    draft        TEXT,
    search_text  TEXT NOT NULL DEFAULT '',
    engine       TEXT NOT NULL DEFAULT '',
    ms           DOUBLE PRECISION,
    created_ms   INTEGER NOT NULL,
    finished_ms  INTEGER
);
CREATE INDEX ocr_jobs_due ON ocr_jobs (state, next_at_ms);
CREATE UNIQUE INDEX ocr_jobs_order ON ocr_jobs (order_id) WHERE order_id IS NOT NULL;

-- Full-text search over the OCR text and the extracted fields.
CREATE VIRTUAL TABLE ocr_search USING fts5 (
    job_id UNINDEXED,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);
