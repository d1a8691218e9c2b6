-- The audit log of admin and supervisor actions: who (a user, or an API key by id and name) did
-- what (`action`, e.g. `inbox.update`) to which row (`target_type`, `target_id`), when, with a
-- small JSON detail that never holds a secret. Rows are only ever inserted; the API reads them
-- newest first by id (the cursor).
CREATE TABLE audit_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    actor_user_id BIGINT NULL,
    actor_api_token_id BIGINT NULL,
    actor_label TEXT NOT NULL,
    action VARCHAR(64) NOT NULL,
    target_type VARCHAR(64) NOT NULL,
    target_id VARCHAR(64) NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT audit_log_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id);
CREATE INDEX audit_log_action_idx ON audit_log (tenant_id, action, id);
