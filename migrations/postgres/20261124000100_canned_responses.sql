-- Agent productivity in the console: canned responses (a reply box's `/shortcut` inserts the
-- body; the shortcut is unique within a tenant) and each team's wrap-up template (the form the
-- resolve dialog shows; JSON, validated by the server; NULL = no form).
CREATE TABLE canned_responses (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    shortcut TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT canned_responses_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE UNIQUE INDEX canned_responses_shortcut_idx ON canned_responses (tenant_id, shortcut);

ALTER TABLE teams ADD COLUMN wrap_up_template TEXT NULL;
