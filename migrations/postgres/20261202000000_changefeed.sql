-- The changefeed mirrors follow: one record per committed change of a
-- repository's timestamp (publish, re-sign, key rotation) and one per
-- deletion, in Notary v1's shape. `id` is the cursor followers poll with.
-- A sequence value taken inside a transaction is not commit order, so the
-- server takes one transaction-scoped advisory lock just before inserting a
-- record and holds it to commit: records become visible in `id` order and a
-- follower that polls `id > last seen` never misses one (storage.rs).
CREATE TABLE changefeed (
    id BIGSERIAL PRIMARY KEY,
    gun TEXT NOT NULL,
    version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    category TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX changefeed_by_gun ON changefeed (gun, id);

-- Repositories that existed before the feed: one update each, at their
-- current timestamp, so a follower starting from 0 learns every GUN.
INSERT INTO changefeed (gun, version, sha256, category, created_at)
SELECT m.gun, m.version, m.sha256, 'update', m.created_at
FROM metadata m
JOIN current_metadata c ON c.gun = m.gun AND c.role = m.role AND c.version = m.version
WHERE m.role = 'timestamp'
ORDER BY m.created_at, m.gun;
