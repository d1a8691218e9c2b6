-- Where a polled channel (e.g. Telegram getUpdates) continues from. Written only after the
-- events up to the cursor are committed, so a restart neither skips nor repeats.
CREATE TABLE channel_cursors (
    inbox_id INTEGER NOT NULL PRIMARY KEY REFERENCES inboxes (id),
    cursor_value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX inboxes_kind_idx ON inboxes (kind);
