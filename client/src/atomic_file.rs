//! Writing files atomically and durably, the one way every file the client
//! keeps is written (trusted metadata, keys, staged root changes, pulled
//! manifests): a temporary file in the same directory, fsynced, renamed over
//! the target, then the directory fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file-system operation that failed, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct FileError {
    context: String,
    source: std::io::Error,
}

impl FileError {
    /// `context` says what was being done (`"reading /x/root.json"`).
    pub fn new(context: impl Into<String>, source: std::io::Error) -> Self {
        FileError {
            context: context.into(),
            source,
        }
    }

    /// The failed operation's I/O error.
    pub fn io_error(&self) -> &std::io::Error {
        &self.source
    }
}

/// Read a file; `Ok(None)` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FileError::new(format!("reading {}", path.display()), e)),
    }
}

/// Read a file that must exist.
pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|e| FileError::new(format!("reading {}", path.display()), e))
}

/// Remove a file; one that is not there is fine.
pub fn remove_if_present(path: &Path) -> Result<(), FileError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(FileError::new(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Write `bytes` to `path` atomically and durably: a temporary file in the
/// same directory (its name does not end in `.json`), fsynced, renamed over
/// `path`, then the directory fsynced so the rename itself survives a power
/// loss (without it the rollback memory could silently go back to the old
/// file). The parent directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic_mode(path, bytes, None)
}

/// [`write_atomic`], with Unix permission bits `mode` set on the file
/// before any byte is written (private keys: 0o600).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let context = || format!("writing {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| FileError::new(context(), e))?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| FileError::new(context(), e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| FileError::new(context(), e))?;
    tmp.persist(path)
        .map_err(|e| FileError::new(context(), e.error))?;
    sync_dir(dir).map_err(|e| FileError::new(format!("syncing {}", dir.display()), e))
}

/// fsync a directory, making renames and creations in it durable. A no-op
/// where directories cannot be opened for syncing (Windows).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Create `path`'s parent directory (and its parents).
fn create_parent(path: &Path) -> Result<(), FileError> {
    let dir: PathBuf = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => return Ok(()),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| FileError::new(format!("creating {}", dir.display()), e))
}

/// [`write_atomic`], creating the parent directory first.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    create_parent(path)?;
    write_atomic(path, bytes)
}

/// [`write_atomic_mode`] with mode 0600, creating the parent directory
/// first: private key files.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    create_parent(path)?;
    write_atomic_mode(path, bytes, Some(0o600))
}
