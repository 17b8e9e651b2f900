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
//! * [`keyring`]: key generation, export and import, public key PEM files,
//!   which key signs a role.
//! * [`tag_target`]: what `tag set` signs (a given digest or the registry's
//!   descriptor, with annotations).
//! * [`pull_report`]: a pull's manifest file and report.
//! * [`announce`]: the words of notices about an operation's circumstances.

pub mod announce;
pub mod fetch;
pub mod history;
pub mod home;
pub mod keyring;
pub mod lookup;
pub mod publisher;
pub mod pull_report;
pub mod registry;
pub mod remote;
pub mod rotation;
pub mod staging;
pub mod status;
pub mod tag_target;
pub mod terminal;
pub mod trusted;
pub mod updater;
