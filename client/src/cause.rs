//! The underlying errors the operation families share. Each family (pin,
//! bootstrap, open, update, history, mirror, publish, registry) keeps its
//! own error type with its own variants, and holds these once, as
//! `Cause(Box<Cause>)` (boxed: every family's error stays small), instead
//! of listing every one again: `?` on any of them
//! works in every family (`holds_cause!` makes the `From`), and a program
//! matches `Family::Cause(Cause::Fetch(_))`.
//! Messages are the underlying error's own (transparent).

use crate::atomic_file::FileError;
use crate::fetch::FetchError;
use crate::home::{ConfigError, KeyError};
use crate::passphrase::PassphraseError;
use crate::remote::RemoteError;
use tagtrust_shared::Error as TufError;

/// An underlying error of an operation.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// Local file system trouble.
    #[error(transparent)]
    File(#[from] FileError),

    /// `config.toml` cannot be used (or asks for something impossible, such
    /// as a trust pin's threshold).
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A download failed, or the HTTP client could not be made.
    #[error(transparent)]
    Fetch(#[from] FetchError),

    /// Metadata that cannot be built, read or verified (a key name, a
    /// signature threshold).
    #[error(transparent)]
    Metadata(#[from] TufError),

    /// The server's write API refused or did not answer.
    #[error(transparent)]
    Remote(#[from] RemoteError),

    /// A private key could not be stored, found or opened.
    #[error(transparent)]
    Keys(#[from] KeyError),

    /// No passphrase could be had.
    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
}

/// `From` every underlying error (whatever converts into [`Cause`]) for a
/// family that holds a `Cause(Box<Cause>)` variant: `holds_cause!(PublishError);`
/// beside the family's definition.
macro_rules! holds_cause {
    ($family:ty) => {
        impl<E> From<E> for $family
        where
            $crate::cause::Cause: From<E>,
        {
            fn from(e: E) -> Self {
                Self::Cause(Box::new($crate::cause::Cause::from(e)))
            }
        }
    };
}
pub(crate) use holds_cause;
