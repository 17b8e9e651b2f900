//! `tagtrust-server import DIR|FILE.tar`: load an air-gapped export
//! (`tagtrust export`, layout in [`tagtrust_shared::export`]) into this
//! server's database.
//!
//! For each GUN of the manifest: every file it lists is read and checked
//! against the manifest's length and sha256 first (a damaged or edited
//! transfer is refused before anything is parsed), then its versioned files
//! are verified and stored through the same core as `POST /_trust/mirror`
//! (`mirror::store_import`): trust comes from the signatures, the
//! manifest only says what should be there. A refused GUN stores nothing
//! and is reported on one line; the others go on; any refusal makes the
//! command fail.

use crate::configuration::Settings;
use crate::mirror::{store_import, Offered, StoreError};
use crate::storage::Storage;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tagtrust_shared::export::{file_kind, ExportedGun, FileKind, Manifest, FORMAT, MANIFEST_FILE};
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_shared::terminal::escape;
use tagtrust_shared::Gun;

/// Largest manifest read.
const MANIFEST_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// An export as read: a directory, or a tar's regular files in memory.
enum Source {
    Directory(PathBuf),
    Tar(BTreeMap<String, Vec<u8>>),
}

impl Source {
    /// A path ending in `.tar` is a tar file, anything else a directory.
    /// Tar members larger than `max_file_bytes` are left out (and so
    /// refused as missing if the manifest names them).
    fn open(path: &Path, max_file_bytes: u64) -> anyhow::Result<Source> {
        if path.extension().is_none_or(|e| e != "tar") {
            return Ok(Source::Directory(path.to_path_buf()));
        }
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut archive = tar::Archive::new(file);
        let mut files = BTreeMap::new();
        let reading = || format!("reading {}", path.display());
        for entry in archive.entries().with_context(reading)? {
            let mut entry = entry.with_context(reading)?;
            let limit = max_file_bytes.max(MANIFEST_MAX_BYTES);
            if !entry.header().entry_type().is_file() || entry.size() > limit {
                continue;
            }
            let name = entry.path().with_context(reading)?;
            let name = name.to_string_lossy();
            let name = name.strip_prefix("./").unwrap_or(&name).to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).with_context(reading)?;
            files.insert(name, bytes);
        }
        Ok(Source::Tar(files))
    }

    /// The file at `path` (from the export's top), at most `max` bytes;
    /// `None` if it is not there.
    fn read(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
        match self {
            Source::Tar(files) => Ok(files.get(path).cloned()),
            Source::Directory(dir) => {
                let file = match std::fs::File::open(dir.join(path)) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(format!("reading {path}: {e}")),
                };
                let mut bytes = Vec::new();
                file.take(max.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("reading {path}: {e}"))?;
                Ok(Some(bytes))
            }
        }
    }

    fn manifest(&self) -> anyhow::Result<Manifest> {
        let bytes = self
            .read(MANIFEST_FILE, MANIFEST_MAX_BYTES)
            .map_err(anyhow::Error::msg)?
            .with_context(|| format!("no {MANIFEST_FILE}: not a tagtrust export"))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {MANIFEST_FILE}"))?;
        if manifest.format != FORMAT {
            bail!(
                "{MANIFEST_FILE} is format {}, this server reads format {FORMAT}",
                manifest.format
            );
        }
        Ok(manifest)
    }
}

/// Import every GUN of the export at `path`.
pub async fn run(settings: &Settings, path: &Path) -> anyhow::Result<()> {
    let max_file_bytes = settings.max_file_bytes as u64;
    let source = Source::open(path, max_file_bytes)?;
    let manifest = source.manifest()?;
    let storage = Storage::connect(settings).await?;
    let mut refused = 0;
    let mut out = std::io::stdout().lock();
    for exported in &manifest.guns {
        match import_gun(&storage, &source, exported, max_file_bytes).await {
            Ok(line) => writeln!(out, "{}", escape(&line))?,
            Err(reason) => {
                refused += 1;
                tracing::info!(gun = %exported.gun, reason = %reason, "import refused");
                eprintln!(
                    "tagtrust-server: refused {}: {}",
                    escape(&exported.gun),
                    escape(&reason)
                );
            }
        }
    }
    if refused > 0 {
        bail!("{refused} of {} GUNs refused", manifest.guns.len());
    }
    Ok(())
}

/// Check, verify and store one GUN; the line to print, or why it was
/// refused (one line).
async fn import_gun(
    storage: &Storage,
    source: &Source,
    exported: &ExportedGun,
    max_file_bytes: u64,
) -> Result<String, String> {
    let gun = Gun::parse(&exported.gun).map_err(|e| e.to_string())?;
    let mut offered = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for file in &exported.files {
        let path = &file.path;
        let kind = file_kind(&gun, path)
            .ok_or_else(|| format!("{path:?} is not a metadata file of {gun}"))?;
        if !seen.insert(path) {
            return Err(format!("{path} is listed twice"));
        }
        if file.length > max_file_bytes {
            return Err(format!(
                "{path} is {} bytes, more than the {max_file_bytes} a file may have",
                file.length
            ));
        }
        let bytes = source
            .read(path, file.length)?
            .ok_or_else(|| format!("{path} is listed in the manifest but missing"))?;
        if bytes.len() as u64 != file.length || sha256_hex(&bytes) != file.sha256 {
            return Err(format!(
                "{path} is not the file the manifest lists (length or sha256 differs): the export was changed or damaged"
            ));
        }
        // The current files are what a web server serves; the server
        // stores versions and serves its own current ones.
        if let FileKind::Version { role, version } = kind {
            offered.push(Offered {
                role,
                version,
                bytes,
            });
        }
    }
    let plan = store_import(storage, &gun, offered, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::Refused(refusal) => refusal.to_string(),
            StoreError::Storage(e) => e.to_string(),
        })?;
    Ok(if plan.store.is_empty() {
        format!("up to date {gun} (timestamp v{})", plan.timestamp_version)
    } else {
        format!(
            "imported {gun}: {} files stored, timestamp v{}",
            plan.store.len(),
            plan.timestamp_version
        )
    })
}
