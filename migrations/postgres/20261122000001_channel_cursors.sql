-- Where a polled channel (e.g. Telegram getUpdates) continues from. Written only after the
-- events up to the cursor are committed, so a restart neither skips nor repeats.
CREATE TABLE channel_cursors (
    inbox_id BIGINT NOT NULL PRIMARY KEY REFERENCES inboxes (id),
    cursor_value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX inboxes_kind_idx ON inboxes (kind);
