-- Which inbox actually delivered an outbound message: set when a fallback inbox sent it while
-- the message's own inbox had its circuit open (NULL: delivered by its own inbox, or not yet).
ALTER TABLE messages ADD COLUMN delivered_via_inbox_id BIGINT NULL;
-- The latest reply token a platform handed us with a customer's message (LINE), one per
-- conversation. A token works once and expires about a minute after the message: the first
-- reply within that time takes it (a conditional DELETE, so two nodes cannot both use it).
CREATE TABLE gateway_reply_tokens (
    conversation_id BIGINT NOT NULL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    token VARCHAR(255) NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT gateway_reply_tokens_conversation_fk FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
