//! Online roles: the keys the server holds for timestamp and snapshot
//! ([`keys`]), signing new versions of those roles ([`signing`]; in Notary's
//! dialect [`notary_signing`]), re-signing
//! them before they expire ([`scheduler`]) and the read path's guarantee
//! never to serve one about to expire ([`fresh`]).
//!
//! Nothing here sees the HTTP server's state: each function is given the
//! store, the master key and the settings it uses (bundled as [`Online`] for
//! re-signing, which also counts in the metrics).

pub(crate) mod fresh;
pub(crate) mod keys;
pub(crate) mod notary_signing;
pub(crate) mod scheduler;
pub(crate) mod signing;

use crate::configuration::Settings;
use crate::metrics::Metrics;
use crate::storage::Storage;
use keys::MasterKey;

/// What re-signing uses: where the repositories are, the key that opens
/// the sealed online keys, the configured lifetimes and margins, and the
/// metrics it counts in.
#[derive(Clone, Copy)]
pub(crate) struct Online<'a> {
    pub(crate) storage: &'a Storage,
    pub(crate) master: &'a MasterKey,
    pub(crate) settings: &'a Settings,
    pub(crate) metrics: &'a Metrics,
}
