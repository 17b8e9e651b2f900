-- When each stored version expires (Unix seconds, from `signed.expires`),
-- so the re-sign scheduler and the expiry metrics need not parse every
-- current file on every pass. NULL for rows stored before this column
-- existed: those are parsed once and filled in by the scheduler.
ALTER TABLE metadata ADD COLUMN expires_at BIGINT;
