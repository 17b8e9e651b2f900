-- 1 for a repository that is a transparent mirror of an upstream server's:
-- its metadata was imported verified and byte for byte, this server holds
-- no key for it, never re-signs it and refuses publishes and key requests
-- for it (the upstream is where it changes).
ALTER TABLE repositories ADD COLUMN mirrored BIGINT NOT NULL DEFAULT 0;
