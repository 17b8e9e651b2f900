//! tagtrust-server: a TUF trust-metadata server for container image tags.
//!
//! * [`configuration`]: command line, TOML file and environment.
//! * [`startup`]: wiring storage, keys and routes into a running server.
//! * `state`: what every request handler shares.
//! * [`dialect`]: the two metadata dialects (spec TUF, Notary v1), one per repository.
//! * `routes`: HTTP handlers (reads, publish, keys, admin, health).
//! * [`publish`]: the pure publish core (current files and uploads in, a
//!   plan or a typed refusal out), reusing `tagtrust_shared` verification.
//! * `storage`: the database layer, one implementation for SQLite and PostgreSQL;
//!   `cache` (current files) and `file_cache` (immutable files) keep reads
//!   off the database; `gzip_cache` keeps the gzip copies served to
//!   clients that ask for them.
//! * `kept_current`: what a publish left parsed of a repository's current
//!   files (root, targets, the snapshot's listing), so the next publish
//!   reads and parses only what changed since. It and `gzip_cache` keep
//!   their copies in a `budget_lru`.
//! * `online`: the server's own keys (sealed under the master key), signing
//!   snapshot and timestamp, the re-sign scheduler and the read path's
//!   freshness guarantee.
//! * `auth`: bearer tokens and scopes, and (`auth::registry_token`) the
//!   registry bearer tokens (JWTs) this server issues at `/auth/token`;
//!   [`tokens`]: the `token` subcommands.
//! * [`import`]: the `import` subcommand (an air-gapped export, verified like a mirror sync).
//! * [`import_notary`]: the `import-notary` subcommand (repositories copied
//!   from a running notary-server) and `notary-pending`.
//! * `error`: the API's JSON errors.
//! * `metrics`: Prometheus metrics.
//!
//! Only what the `tagtrust-server` binary and the fuzz crate use is public.

pub(crate) mod auth;
pub(crate) mod budget_lru;
pub(crate) mod cache;
pub(crate) mod changefeed;
pub mod configuration;
pub mod dialect;
pub(crate) mod error;
pub(crate) mod file_cache;
pub(crate) mod gzip_cache;
pub mod import;
pub mod import_notary;
pub(crate) mod kept_current;
pub(crate) mod metrics;
pub(crate) mod mirror;
pub(crate) mod online;
pub mod publish;
pub(crate) mod routes;
pub mod startup;
pub(crate) mod state;
pub(crate) mod storage;
pub mod tokens;
