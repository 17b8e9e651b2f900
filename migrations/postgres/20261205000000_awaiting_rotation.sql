-- 1 for a Notary repository imported from a notary-server
-- (`tagtrust-server import-notary`) whose current root still lists only the
-- old server's timestamp key (it stays in the old notary-signer): this
-- server serves the imported timestamp and snapshot as they are and signs
-- nothing for it, until the publisher runs `notary key rotate GUN timestamp
-- -r` here; the publish that stores a root listing this server's timestamp
-- key sets it back to 0. `tagtrust-server notary-pending` lists them, the
-- metric `tagtrust_notary_awaiting_rotation` counts them.
ALTER TABLE repositories ADD COLUMN awaiting_rotation BIGINT NOT NULL DEFAULT 0;
-- The scheduler leaves them out and the pending report lists them: a
-- partial index holds only them.
CREATE INDEX repositories_awaiting_rotation ON repositories (gun) WHERE awaiting_rotation <> 0;
