-- The auto-responder (docs/auto-responder.md): one flow per inbox, each conversation's progress
-- through it, and a log of decision hook calls. Plus what a flow collects and decides, stored
-- on conversations and contacts for agents (and the router) to see.

-- An inbox's flow (JSON, switchboard_core::autoresponder::Flow). No row: no bot; new
-- conversations go straight to the queue.
CREATE TABLE inbox_flows (
    inbox_id INTEGER NOT NULL PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    flow TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT inbox_flows_inbox_fk FOREIGN KEY (inbox_id) REFERENCES inboxes (id)
);

-- A conversation's bot state (JSON, FlowState). `version` is the compare-and-swap token: a
-- turn commits only if nobody committed another since it read the row, so two nodes handling
-- the same conversation at once never both answer. `last_message_id` is the newest inbound
-- message the bot has taken; `hook_deadline` is set while a decision hook call is pending, so
-- any node can time it out if the calling node dies.
CREATE TABLE bot_sessions (
    conversation_id INTEGER NOT NULL PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_message_id INTEGER NOT NULL,
    hook_deadline INTEGER NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT bot_sessions_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id)
);
CREATE INDEX bot_sessions_deadline_idx ON bot_sessions (hook_deadline);

-- Every decision hook call: when, how long, and how it ended.
CREATE TABLE decision_hook_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    inbox_id INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    call_id INTEGER NOT NULL,
    step VARCHAR(64) NOT NULL,
    outcome VARCHAR(32) NOT NULL,
    http_status INTEGER NULL,
    latency_ms INTEGER NOT NULL,
    error TEXT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX decision_hook_calls_inbox_idx ON decision_hook_calls (tenant_id, inbox_id, id);

-- What the bot (or the decision hook) set: JSON objects / arrays; NULL reads as empty.
ALTER TABLE conversations ADD COLUMN attributes TEXT NULL;
ALTER TABLE conversations ADD COLUMN tags TEXT NULL;
ALTER TABLE conversations ADD COLUMN required_skills TEXT NULL;
ALTER TABLE conversations ADD COLUMN preferred_agent_id INTEGER NULL;
ALTER TABLE contacts ADD COLUMN attributes TEXT NULL;
