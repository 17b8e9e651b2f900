//! The TUF core shared by the tagtrust server and client.
//!
//! * [`metadata`]: one small type per role and the generic signed envelope.
//! * [`canonical`]: OLPC canonical JSON, the bytes signatures cover.
//! * [`keys`]: public keys, key IDs, signing keys and their encrypted PEM form.
//! * [`verify`]: the one place that answers "is this signed by a threshold of these keys".
//! * [`succession`]: the one place that answers "is this root the valid successor of that one".
//! * [`hashes`]: length and hash checks of downloaded bytes.
//! * [`pathmatch`]: which targets a delegated role may sign.
//! * [`role`]: the four top-level role names, and which are signed online.
//! * [`gun`] and [`mod@reference`]: image repository names and `host/repo:tag` references.
//! * [`bins`]: hashed-bin delegations and the server's tag-change body.
//! * [`export`]: the air-gapped export's layout and manifest.
//!
//! Why not tough's schema types: tough recomputes key IDs from key content
//! (TUF says key IDs are whatever the delegating role lists), rejects keys with
//! fields it does not know, requires `sha256` in every hash set and has no TAP 15
//! succinct delegations. Other TUF repositories (python-tuf's) legitimately do
//! all of those, so our types keep unknown fields and take key IDs as listed.

pub mod bins;
pub mod canonical;
pub mod error;
pub mod export;
pub mod gun;
pub mod hashes;
pub mod keys;
pub mod metadata;
pub mod notary;
pub mod pathmatch;
pub mod reference;
pub mod role;
pub mod succession;
pub mod terminal;
pub mod trusted;
pub mod verify;

pub use error::Error;
pub use gun::Gun;
pub use keys::{P256SigningKey, PrivateKey, PublicKey, SigningKey};
pub use metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, RoleKeys, Root, Signature, Snapshot,
    SuccinctRoles, TargetFile, Targets, Timestamp,
};
pub use reference::ImageReference;
pub use role::TopLevelRole;
