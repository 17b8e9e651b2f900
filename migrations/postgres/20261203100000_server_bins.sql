-- The soonest expiry (Unix seconds) of a repository's hashed bins when the
-- server holds their key and signs them; NULL otherwise. Kept by every
-- transaction that signs such bins, so the re-sign scheduler finds the
-- repositories with bins due by an index range scan, as it does for
-- timestamps and snapshots, without scanning every bin of every repository.
ALTER TABLE repositories ADD COLUMN bins_expire_at BIGINT;
CREATE INDEX repositories_bins_expire_at ON repositories (bins_expire_at) WHERE bins_expire_at IS NOT NULL;
