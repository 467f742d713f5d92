-- Whether the line's product was covered by insurance when it was priced, so
-- an invoice can say which lines no plan pays for. Lines priced before were
-- priced as covered.
ALTER TABLE invoice_lines ADD COLUMN covered BIGINT NOT NULL DEFAULT 1;
