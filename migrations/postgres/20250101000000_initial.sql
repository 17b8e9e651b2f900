-- One row per GUN; publishers and key creation lock it (lock_seq bump) so
-- that writes to one repository serialise.
CREATE TABLE repositories (
    gun TEXT PRIMARY KEY NOT NULL,
    lock_seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- Every version of every role ever published or signed, exact bytes.
CREATE TABLE metadata (
    gun TEXT NOT NULL,
    role TEXT NOT NULL,
    version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (gun, role, version)
);
CREATE INDEX metadata_by_sha256 ON metadata (gun, role, sha256);

-- Server-held (online) keys: the ed25519 seed encrypted under the master key.
CREATE TABLE online_keys (
    gun TEXT NOT NULL,
    role TEXT NOT NULL,
    seq BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    encrypted_seed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (gun, role, seq)
);

-- API tokens: only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
