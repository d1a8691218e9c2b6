-- Offers (docs/routing.md): a conversation offered to one agent holds one of their slots until
-- they accept (-> assigned), reject or let it expire (-> queued again, keeping its place).
-- `declined_by` (JSON array of user ids) keeps the agents who rejected or let it expire, so the
-- next offer goes to someone else while anyone else is eligible.
ALTER TABLE conversations ADD COLUMN offer_expires_at BIGINT NULL;
ALTER TABLE conversations ADD COLUMN declined_by TEXT NULL;
CREATE INDEX conversations_offer_expiry_idx ON conversations (state, offer_expires_at);
