-- One request at a time works an order's stock: a request claims the order
-- (until this time, so a crashed request's claim lapses) before it reserves,
-- and the claim clears with the state change. Without it, the requests that
-- lose an approval race hold stock for a moment and push the winner's FEFO
-- picks onto later lots.
ALTER TABLE orders ADD COLUMN busy_until_ms BIGINT;
