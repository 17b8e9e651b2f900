-- The newest version of each role of each repository, with its expiry:
-- what the re-sign scheduler and the expiry metrics scan on every pass,
-- without touching the ever-growing history in `metadata`. Maintained by
-- every insert into `metadata` (in the same transaction) and removed with
-- the repository.
CREATE TABLE current_metadata (
    gun TEXT NOT NULL,
    role TEXT NOT NULL,
    version BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (gun, role)
);

INSERT INTO current_metadata (gun, role, version, expires_at)
SELECT m.gun, m.role, m.version, m.expires_at FROM metadata m
WHERE m.version = (SELECT MAX(m2.version) FROM metadata m2 WHERE m2.gun = m.gun AND m2.role = m.role);
