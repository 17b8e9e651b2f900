//! tagtrust client library: everything the `tagtrust` CLI does, callable from
//! other programs and tests. It reads no environment variables, prompts for
//! nothing and prints nothing: settings come in as options
//! ([`session::Session`]), passphrases from a caller's
//! [`passphrase::PassphraseSource`], notices go to a caller's
//! [`notices::Notices`], and every operation family has its own error type.
//!
//! * [`trusted`]: the trusted-metadata state machine, re-exported from
//!   `tagtrust_shared` (a server verifying a mirrored copy uses it too).
//!   Pure: handed bytes, it says accept or why not
//!   ([`trusted::TrustError`]). Every TUF client rule lives there; its tests
//!   against the repository simulator are `trusted_tests.rs`.
//! * [`fetch`]: downloading with size limits and timeouts; the one HTTP
//!   client builder.
//! * [`updater`]: the TUF client workflow, fetching and persisting around
//!   [`trusted`].
//! * [`bootstrap`]: establishing trust in a GUN's first root (stored, root
//!   file, pin, first use) and the anchor kept for history.
//! * [`session`]: opening a repository (home, server, HTTP settings,
//!   bootstrap, updater); every operation goes through it.
//! * [`freshness`]: the consumer's `max_age` policy.
//! * [`home`]: the local state directory (trusted metadata, keys, config).
//! * [`atomic_file`]: atomic, durable file writes and file errors.
//! * [`cause`]: the underlying errors (files, config, downloads, metadata,
//!   the server, keys, passphrases) every operation family's error holds once.
//! * [`passphrase`]: where private-key passphrases come from.
//! * [`notices`]: what the user is told that is not an error.
//! * [`remote`]: the tagtrust server's write API (publish, online keys).
//! * [`publisher`]: the `Publisher`, tag set/rm, list, delegations.
//! * [`init`]: creating a GUN's repository (root v1, published or staged).
//! * [`publish_error`]: why a publisher operation was not done.
//! * `signing`: signing a role's next version with a fresh expiry.
//! * [`lookup`]: resolve a tag.
//! * [`notary_migrate`]: `migrate notary`, a Notary repository fetched,
//!   verified and published as spec TUF; [`notary_convert`]: the pure
//!   conversion it publishes.
//! * [`mirror`]: transparent mirror sync between two servers.
//! * [`rerooted`]: re-rooted mirror import (the operator's root delegating to the upstream).
//! * [`export`]: the air-gapped export, a static TUF layout of GUNs.
//! * [`rotation`]: key rotation and re-signing roles before they expire.
//! * [`status`]: versions, expiries and key holders of every role.
//! * [`history`]: what a tag pointed to, version by version, verified.
//! * [`staging`]: multi-party root signing.
//! * [`registry`]: OCI registry client for verified pulls and `--from-registry`.
//! * [`terminal`]: escaping text from metadata and servers before it is shown.
//! * [`keyring`]: key generation, export and import, public key PEM files,
//!   which key signs a role.
//! * [`tag_target`]: what `tag set` signs (a given digest or the registry's
//!   descriptor, with annotations); [`tag_list`]: the list `tag set
//!   --from-file` reads.
//! * [`pull_report`]: a pull's manifest file and report.
//! * [`announce`]: the words of notices about an operation's circumstances.
//! * [`error_line`]: an error and its causes as one line.

pub mod announce;
pub mod atomic_file;
pub mod bins;
pub mod bootstrap;
pub mod cause;
pub mod error_line;
pub mod export;
pub mod fetch;
pub mod freshness;
pub mod history;
pub mod home;
pub mod init;
pub mod keyring;
pub mod lookup;
pub mod mirror;
pub mod notary_convert;
pub mod notary_migrate;
pub mod notices;
pub mod passphrase;
pub mod publish_error;
pub mod publisher;
pub mod pull_report;
pub mod registry;
pub mod remote;
pub mod rerooted;
pub mod rotation;
pub mod session;
mod signing;
pub mod staging;
pub mod status;
pub mod tag_list;
pub mod tag_target;
pub use tagtrust_shared::terminal;
pub use tagtrust_shared::trusted;
#[cfg(test)]
mod trusted_tests;
pub mod updater;
