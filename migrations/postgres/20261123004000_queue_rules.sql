-- Queue rules (docs/routing.md): an agent's wrap-up after a resolve, and when a conversation
-- entered its current queue (the clock for overflow; queued_at stays the customer's place).
ALTER TABLE users ADD COLUMN wrap_up_until BIGINT NULL;
ALTER TABLE conversations ADD COLUMN queue_entered_at BIGINT NULL;
