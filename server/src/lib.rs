//! tagtrust-server: a TUF trust-metadata server for container image tags.
//!
//! * [`configuration`]: command line, TOML file and environment.
//! * [`startup`]: wiring storage, keys and routes into a running server.
//! * [`routes`]: HTTP handlers (reads, publish, keys, admin, health).
//! * [`publish`]: publish validation (reusing `tagtrust_shared` verification).
//! * [`storage`]: the database layer, one implementation for SQLite and PostgreSQL.
//! * [`online`]: building, signing and storing the server-signed snapshot and timestamp.
//! * [`resign`]: the re-sign scheduler (and the read path's safety net).
//! * [`signer`]: online keys, encrypted at rest under the master key.
//! * [`auth`]: bearer tokens and scopes.
//! * [`error`]: the API's JSON errors.
//! * [`metrics`]: Prometheus metrics.

pub mod auth;
pub mod configuration;
pub mod error;
pub mod metrics;
pub mod online;
pub mod publish;
pub mod resign;
pub mod routes;
pub mod signer;
pub mod startup;
pub mod storage;
pub mod tokens;
