//! `tagtrust export`: an air-gapped copy of GUNs' signed metadata as a
//! static TUF layout ([`tagtrust_shared::export`]): every stored version of
//! every role, under its consistent-snapshot name `{N}.{role}.json`, plus
//! the current `{role}.json` files, plus a manifest with each file's sha256
//! and length. Any static web server whose root is the export serves it at
//! the URLs TUF clients (and `tagtrust lookup`) use; `tagtrust-server
//! import` verifies and loads it into another server.
//!
//! Only what the server serves is read, through the same history reader as
//! a mirror sync ([`crate::mirror::Upstream`]), and written byte for byte:
//! the local home (and so every private key) is never read. Nothing is
//! verified here; consumers and the importing server verify everything.
//!
//! A directory gets each file written atomically and the manifest last, so
//! an interrupted export has no manifest naming files it lacks. A `.tar`
//! file is built in memory and written atomically as a whole.

use crate::atomic_file::{write_file_atomically, FileError};
use crate::mirror::{Copied, HeldVersions, MirrorError, Upstream};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tagtrust_shared::export::{
    file_path, ExportedFile, ExportedGun, Manifest, FORMAT, MANIFEST_FILE,
};
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_shared::{Gun, TopLevelRole};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading {gun} from the server: {source}")]
    Read {
        gun: Gun,
        #[source]
        source: MirrorError,
    },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("building the tar archive: {0}")]
    Tar(#[source] std::io::Error),
}

/// Where an export goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A directory: a web server's root.
    Directory(PathBuf),
    /// One tar file of the same layout.
    Tar(PathBuf),
}

impl Destination {
    /// A path ending in `.tar` is a tar file, anything else a directory.
    pub fn for_path(path: &Path) -> Destination {
        if path.extension().is_some_and(|e| e == "tar") {
            Destination::Tar(path.to_path_buf())
        } else {
            Destination::Directory(path.to_path_buf())
        }
    }
}

/// Where the files go as they are read.
enum Sink {
    Directory(PathBuf),
    Tar {
        file: PathBuf,
        builder: tar::Builder<Vec<u8>>,
        mtime: u64,
    },
}

impl Sink {
    fn put(&mut self, path: &str, bytes: &[u8]) -> Result<(), ExportError> {
        match self {
            Sink::Directory(dir) => Ok(write_file_atomically(&dir.join(path), bytes)?),
            Sink::Tar { builder, mtime, .. } => {
                let mut header = tar::Header::new_ustar();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(*mtime);
                builder
                    .append_data(&mut header, path, bytes)
                    .map_err(ExportError::Tar)
            }
        }
    }

    fn finish(self) -> Result<(), ExportError> {
        match self {
            Sink::Directory(_) => Ok(()),
            Sink::Tar { file, builder, .. } => {
                let bytes = builder.into_inner().map_err(ExportError::Tar)?;
                Ok(write_file_atomically(&file, &bytes)?)
            }
        }
    }
}

/// Export `guns` from `upstream` to `to`; returns the manifest written.
/// `copied` hears of each file read. Fails as a whole: an export lacking
/// a GUN asked for is no export.
pub fn export(
    upstream: &Upstream,
    guns: &[Gun],
    to: &Destination,
    now: DateTime<Utc>,
    copied: &mut dyn FnMut(Copied<'_>),
) -> Result<Manifest, ExportError> {
    let mut sink = match to {
        Destination::Directory(dir) => Sink::Directory(dir.clone()),
        Destination::Tar(file) => Sink::Tar {
            file: file.clone(),
            builder: tar::Builder::new(Vec::new()),
            mtime: u64::try_from(now.timestamp()).unwrap_or(0),
        },
    };
    let mut manifest = Manifest {
        format: FORMAT,
        created_at: now,
        upstream: upstream.url().to_string(),
        guns: Vec::new(),
    };
    for gun in guns {
        let read = |source| ExportError::Read {
            gun: gun.clone(),
            source,
        };
        let (timestamp_bytes, timestamp) = upstream.timestamp(gun).map_err(read)?;
        let versions = upstream
            .versions_after(gun, &timestamp, &HeldVersions::default(), copied)
            .map_err(read)?;
        let mut files = Vec::new();
        let mut put = |name: String, bytes: &[u8]| -> Result<(), ExportError> {
            let path = file_path(gun, &name);
            sink.put(&path, bytes)?;
            files.push(ExportedFile {
                path,
                sha256: sha256_hex(bytes),
                length: bytes.len() as u64,
            });
            Ok(())
        };
        // The current file of each role is its newest version read, which
        // is what the timestamp describes; timestamp.json is the one read
        // first, exactly as the server served it.
        let mut current: BTreeMap<&str, &[u8]> = BTreeMap::new();
        for file in &versions {
            put(file.name(), &file.bytes)?;
            current.insert(&file.role, &file.bytes);
        }
        current.insert(TopLevelRole::Timestamp.as_str(), &timestamp_bytes);
        for (role, bytes) in current {
            put(format!("{role}.json"), bytes)?;
        }
        manifest.guns.push(ExportedGun {
            gun: gun.to_string(),
            timestamp_version: timestamp.signed.version,
            files,
        });
    }
    let mut bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    bytes.push(b'\n');
    sink.put(MANIFEST_FILE, &bytes)?;
    sink.finish()?;
    Ok(manifest)
}
