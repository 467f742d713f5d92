-- Whether insurance plans cover a product. Everything imported before was
-- priced as covered, so that stays the default.
ALTER TABLE products ADD COLUMN covered INTEGER NOT NULL DEFAULT 1;
