-- Agent productivity in the console: canned responses (a reply box's `/shortcut` inserts the
-- body; the shortcut is unique within a tenant) and each team's wrap-up template (the form the
-- resolve dialog shows; JSON, validated by the server; NULL = no form).
CREATE TABLE canned_responses (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    shortcut VARCHAR(64) NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT canned_responses_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE UNIQUE INDEX canned_responses_shortcut_idx ON canned_responses (tenant_id, shortcut);

ALTER TABLE teams ADD COLUMN wrap_up_template TEXT NULL;
