-- Internal notes: a private message is shown to agents and supervisors and never delivered to
-- the customer. Existing rows are public; readers treat NULL as false too.
ALTER TABLE messages ADD COLUMN private BIGINT NULL DEFAULT 0;
