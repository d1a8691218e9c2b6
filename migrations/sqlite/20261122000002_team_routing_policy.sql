-- A team's queue policy (JSON, `switchboard_core::routing::QueuePolicy`); NULL = the defaults.
ALTER TABLE teams ADD COLUMN routing_policy TEXT NULL;
