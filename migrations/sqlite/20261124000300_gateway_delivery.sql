-- Which inbox actually delivered an outbound message: set when a fallback inbox sent it while
-- the message's own inbox had its circuit open (NULL: delivered by its own inbox, or not yet).
ALTER TABLE messages ADD COLUMN delivered_via_inbox_id INTEGER NULL;
-- The latest reply token a platform handed us with a customer's message (LINE), one per
-- conversation. A token works once and expires about a minute after the message: the first
-- reply within that time takes it (a conditional DELETE, so two nodes cannot both use it).
CREATE TABLE gateway_reply_tokens (
    conversation_id INTEGER NOT NULL PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    inbox_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    token VARCHAR(255) NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT gateway_reply_tokens_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id)
);
