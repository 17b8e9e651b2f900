//! Why a publisher operation was not done: [`PublishError`] for every
//! change to a repository (init, tags, delegations, key rotation, root
//! changes and their staging) and [`StagedFileError`] for the staged root
//! change file. Kept apart from the operations so that `publisher`,
//! `staging`, `init` and `rotation` all point at it and not at each other.

use crate::atomic_file::FileError;
use crate::cause::{holds_cause, Cause};
use crate::session::ReadError;
use std::path::PathBuf;
use tagtrust_shared::Error as TufError;

/// Why a change to a repository (init, tags, delegations, key rotation,
/// root changes and their staging) was not made.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The change is not possible as asked (an argument, or the state of
    /// the repository or of this home), in words.
    #[error("{0}")]
    Refused(String),

    /// Every attempt lost a race with another publisher.
    #[error("gave up after {attempts} conflicting publishes to {gun}; try again")]
    GaveUp { gun: String, attempts: u32 },

    /// The repository could not be opened or walked.
    #[error(transparent)]
    Read(#[from] ReadError),

    #[error(transparent)]
    Staged(#[from] StagedFileError),

    /// What was being done when `source` happened.
    #[error("{context}: {source}")]
    During {
        context: String,
        source: Box<PublishError>,
    },

    /// The server refused or did not answer ([`Cause::Remote`]), keys,
    /// passphrases, config.toml, local files, or metadata that cannot be
    /// built or read ([`Cause::Metadata`]).
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(PublishError);

/// Says what was being done when an error happened.
pub(crate) trait During<T> {
    fn during(self, context: impl FnOnce() -> String) -> Result<T, PublishError>;
}

impl<T, E: Into<PublishError>> During<T> for Result<T, E> {
    fn during(self, context: impl FnOnce() -> String) -> Result<T, PublishError> {
        self.map_err(|e| PublishError::During {
            context: context(),
            source: Box::new(e.into()),
        })
    }
}

/// Why a staged root change file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StagedFileError {
    #[error("no staged root change in {path}: {source}")]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} is not a staged root change: {source}")]
    NotStaged {
        path: PathBuf,
        source: serde_json::Error,
    },

    /// A metadata file inside it that does not parse (`what`: which).
    #[error("{what}: {source}")]
    Metadata { what: String, source: TufError },

    #[error(transparent)]
    File(#[from] FileError),
}
