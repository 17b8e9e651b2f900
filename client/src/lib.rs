//! tagtrust client library: everything the `tagtrust` CLI does, callable from
//! other programs and tests.
//!
//! * [`trusted`]: the trusted-metadata state machine. Pure: handed bytes, it
//!   says accept or why not. Every TUF client rule lives there.
//! * [`fetch`]: downloading with size limits and timeouts.
//! * [`updater`]: the TUF client workflow, fetching and persisting around
//!   [`trusted`].
//! * [`home`]: the local state directory (trusted metadata, keys, config).
//! * [`remote`]: the tagtrust server's write API (publish, online keys).
//! * [`publisher`]: init, tag set/rm, list.
//! * [`lookup`]: resolve a tag with trust bootstrapping.
//! * [`rotation`]: key rotation and re-signing roles before they expire.
//! * [`status`]: versions, expiries and key holders of every role.
//! * [`history`]: what a tag pointed to, version by version, verified.
//! * [`staging`]: multi-party root signing.
//! * [`registry`]: OCI registry client for verified pulls and `--from-registry`.
//! * [`terminal`]: escaping text from metadata and servers before it is shown.

pub mod fetch;
pub mod history;
pub mod home;
pub mod lookup;
pub mod publisher;
pub mod registry;
pub mod remote;
pub mod rotation;
pub mod staging;
pub mod status;
pub mod terminal;
pub mod trusted;
pub mod updater;
