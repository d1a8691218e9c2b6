-- Where a polled channel (e.g. Telegram getUpdates) continues from. Written only after the
-- events up to the cursor are committed, so a restart neither skips nor repeats.
CREATE TABLE channel_cursors (
    inbox_id BIGINT NOT NULL PRIMARY KEY,
    cursor_value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT channel_cursors_inbox_fk FOREIGN KEY (inbox_id) REFERENCES inboxes (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX inboxes_kind_idx ON inboxes (kind);
