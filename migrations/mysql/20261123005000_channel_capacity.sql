-- Capacity per channel kind (docs/routing.md, "Capacity per channel"): on top of an agent's
-- total capacity, e.g. at most 2 WhatsApp chats. One row per capped kind; `slots_held` is
-- changed in the same transaction as users.active_load, under a conditional update, so the cap
-- holds across nodes exactly like the total does. Kinds without a row are not capped.
CREATE TABLE agent_channel_loads (
    user_id BIGINT NOT NULL,
    tenant_id BIGINT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    slots BIGINT NOT NULL,
    slots_held BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind),
    CONSTRAINT agent_channel_loads_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- The same caps as JSON (kind -> slots), for reading users without a join.
ALTER TABLE users ADD COLUMN channel_capacity TEXT NULL;
