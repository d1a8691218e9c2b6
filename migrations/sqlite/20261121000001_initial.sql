-- Switchboard initial schema (SQLite).
--
-- Portable conventions shared by the three dialects (the storage crate reads every backend
-- through sqlx's Any driver, which only decodes a small common set of types):
--   * every integer is BIGINT, including booleans (0/1) and timestamps (milliseconds since the
--     Unix epoch, UTC);
--   * text is TEXT, or VARCHAR(191) where it is part of an index (MySQL's utf8mb4 key limit);
--   * JSON is stored as TEXT and (de)serialized by the application;
--   * deduplication is done by unique constraints, never by read-then-write checks.
-- Every table carries created_at / updated_at.

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    slug VARCHAR(191) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    email VARCHAR(191) NOT NULL,
    name TEXT NOT NULL,
    role VARCHAR(32) NOT NULL,
    password_hash TEXT NOT NULL,
    status VARCHAR(32) NOT NULL,
    capacity BIGINT NOT NULL,
    -- Conversations held right now; changed only together with the conversation row that takes
    -- or releases the slot, in one transaction.
    active_load BIGINT NOT NULL DEFAULT 0,
    last_assigned_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email),
    CONSTRAINT users_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_tenant_status_idx ON users (tenant_id, status);

-- Login sessions, keyed by the SHA-256 (hex) of the session token.
CREATE TABLE sessions (
    token_hash VARCHAR(128) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    tenant_id BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    role VARCHAR(32) NOT NULL,
    token_hash VARCHAR(128) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT teams_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE INDEX teams_tenant_idx ON teams (tenant_id);

CREATE TABLE team_members (
    team_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    tenant_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id),
    CONSTRAINT team_members_team_fk FOREIGN KEY (team_id) REFERENCES teams (id),
    CONSTRAINT team_members_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id);

CREATE TABLE inboxes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    settings TEXT NOT NULL,
    secrets TEXT NOT NULL,
    mask_identifiers BIGINT NOT NULL DEFAULT 0,
    team_id BIGINT NULL,
    token_hash VARCHAR(128) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT inboxes_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT inboxes_team_fk FOREIGN KEY (team_id) REFERENCES teams (id)
);
CREATE INDEX inboxes_tenant_idx ON inboxes (tenant_id);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    name TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT contacts_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE INDEX contacts_tenant_idx ON contacts (tenant_id);

-- A contact as known on one inbox. The unique key is what makes concurrent first messages of a
-- new customer agree on one contact.
CREATE TABLE contact_identities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    external_id VARCHAR(191) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT contact_identities_inbox_external_key UNIQUE (inbox_id, external_id),
    CONSTRAINT contact_identities_contact_fk FOREIGN KEY (contact_id) REFERENCES contacts (id),
    CONSTRAINT contact_identities_inbox_fk FOREIGN KEY (inbox_id) REFERENCES inboxes (id)
);
CREATE INDEX contact_identities_contact_idx ON contact_identities (contact_id);

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    state VARCHAR(32) NOT NULL,
    priority BIGINT NOT NULL,
    team_id BIGINT NULL,
    assignee_id BIGINT NULL,
    created_at BIGINT NOT NULL,
    queued_at BIGINT NULL,
    assigned_at BIGINT NULL,
    first_agent_reply_at BIGINT NULL,
    closed_at BIGINT NULL,
    close_reason VARCHAR(32) NULL,
    biz_data TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- = contact_id while the conversation is open, NULL once it is closed. UNIQUE (inbox_id,
    -- open_key) allows one open conversation per (inbox, contact) and any number of closed ones
    -- (NULLs never collide), without the partial indexes MySQL lacks.
    open_key BIGINT NULL,
    CONSTRAINT conversations_open_key UNIQUE (inbox_id, open_key),
    CONSTRAINT conversations_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT conversations_inbox_fk FOREIGN KEY (inbox_id) REFERENCES inboxes (id),
    CONSTRAINT conversations_contact_fk FOREIGN KEY (contact_id) REFERENCES contacts (id),
    CONSTRAINT conversations_assignee_fk FOREIGN KEY (assignee_id) REFERENCES users (id)
);
CREATE INDEX conversations_tenant_state_idx ON conversations (tenant_id, state, priority, queued_at);
CREATE INDEX conversations_assignee_idx ON conversations (assignee_id, state);
CREATE INDEX conversations_tenant_id_idx ON conversations (tenant_id, id);
CREATE INDEX conversations_contact_idx ON conversations (contact_id);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    direction VARCHAR(16) NOT NULL,
    sender_kind VARCHAR(16) NOT NULL,
    sender_user_id BIGINT NULL,
    text TEXT NULL,
    attachments TEXT NOT NULL,
    platform_message_id VARCHAR(191) NULL,
    client_message_id VARCHAR(191) NULL,
    status VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The dedupe keys. Each is NULL on the other direction's messages; NULLs never collide.
    CONSTRAINT messages_platform_key UNIQUE (inbox_id, platform_message_id),
    CONSTRAINT messages_client_key UNIQUE (conversation_id, client_message_id),
    CONSTRAINT messages_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT messages_inbox_fk FOREIGN KEY (inbox_id) REFERENCES inboxes (id)
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);

CREATE TABLE conversation_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    actor_user_id BIGINT NULL,
    detail TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT conversation_events_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id)
);
CREATE INDEX conversation_events_conversation_idx ON conversation_events (conversation_id, id);

-- Deliveries still to make. A worker leases an entry (lease_owner, lease_until); a lease that
-- passes without complete/fail makes the entry claimable again.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    message_id BIGINT NULL,
    kind VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT NULL,
    lease_owner VARCHAR(191) NULL,
    lease_until BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT outbox_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT outbox_message_fk FOREIGN KEY (message_id) REFERENCES messages (id)
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_tenant_status_idx ON outbox (tenant_id, status, id);
CREATE INDEX outbox_message_idx ON outbox (message_id);
