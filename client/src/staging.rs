//! Root metadata waiting for more signatures (multi-party root).
//!
//! `init --root-keys 3 --root-threshold 2` signs root v1 with one key and
//! stages it, with targets v1, under `staged/<server>/<gun>/`. Each root key
//! holder adds a signature (`root sign`), and `root publish` uploads the
//! staged files once the threshold is met. Every step says how many
//! signatures are still needed.

use crate::home::{load_key_file, passphrase, write_file_atomically, Home};
use crate::publisher::Publisher;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tagtrust_shared::{Error as TufError, Gun, Metadata, Root};

/// The staging directory of one GUN on one server.
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub fn new(home: &Home, server: &str, gun: &Gun) -> Staging {
        Staging {
            dir: home.staging_dir(server, gun),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn exists(&self) -> bool {
        self.dir.join("root.json").exists()
    }

    /// Stage role files (`(role, bytes)`), replacing what was staged.
    pub fn save(&self, files: &[(String, Vec<u8>)]) -> Result<()> {
        for (role, bytes) in files {
            write_file_atomically(&self.dir.join(format!("{role}.json")), bytes)?;
        }
        Ok(())
    }

    /// The staged files, root first.
    pub fn load(&self) -> Result<Vec<(String, Vec<u8>)>> {
        if !self.exists() {
            bail!("nothing is staged in {}", self.dir.display());
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?
        {
            let path = entry?.path();
            let Some(role) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((role.to_string(), bytes));
        }
        files.sort_by_key(|(role, _)| (role != "root", role.clone()));
        Ok(files)
    }

    pub fn clear(&self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("removing {}", self.dir.display()))
    }
}

/// The staging directory, its files (root first) and the parsed root.
type StagedRoot = (Staging, Vec<(String, Vec<u8>)>, Metadata<Root>);

/// Where a staged root stands.
#[derive(Debug, Serialize)]
pub struct RootSigning {
    pub gun: String,
    pub version: u64,
    /// Valid signatures by the root keys it must be signed by.
    pub signatures: usize,
    pub threshold: u64,
    /// Signatures still needed (0: ready to publish, or published).
    pub needed: u64,
    pub published: bool,
}

/// How many more signatures `root` needs from the keys `signer_root` lists
/// for the root role.
fn signatures_needed(signer_root: &Root, root: &Metadata<Root>) -> Result<(usize, u64, u64)> {
    let threshold = signer_root.role_keys("root")?.threshold;
    match signer_root.verify_role("root", root) {
        Ok(()) => Ok((threshold as usize, threshold, 0)),
        Err(TufError::Threshold {
            valid, threshold, ..
        }) => Ok((valid, threshold, threshold.saturating_sub(valid as u64))),
        Err(e) => Err(e.into()),
    }
}

impl Publisher {
    /// The staged root's standing: its own root keys' threshold and, for a
    /// new version, the previous trusted root's as well.
    fn root_signing(&self, gun: &Gun, root: &Metadata<Root>) -> Result<RootSigning> {
        let (mut signatures, mut threshold, mut needed) = signatures_needed(&root.signed, root)?;
        if root.signed.version > 1 {
            let trusted = self.home.metadata_dir(&self.server, gun).join("root.json");
            let bytes = std::fs::read(&trusted)
                .with_context(|| format!("reading {}", trusted.display()))?;
            let previous = Metadata::<Root>::from_bytes(&bytes)?;
            let (s, t, n) = signatures_needed(&previous.signed, root)?;
            if n > needed {
                (signatures, threshold, needed) = (s, t, n);
            }
        }
        Ok(RootSigning {
            gun: gun.to_string(),
            version: root.signed.version,
            signatures,
            threshold,
            needed,
            published: false,
        })
    }

    fn staged_root(&self, gun: &Gun) -> Result<StagedRoot> {
        let staging = Staging::new(&self.home, &self.server, gun);
        let files = staging
            .load()
            .with_context(|| format!("no staged root for {gun}"))?;
        let root = Metadata::<Root>::from_bytes(&files[0].1).context("staged root")?;
        Ok((staging, files, root))
    }

    /// Add the signature of the root key in `key_file` to the staged root.
    pub fn root_sign(&self, gun: &Gun, key_file: &Path) -> Result<RootSigning> {
        let (staging, mut files, mut root) = self.staged_root(gun)?;
        let pass = passphrase(&format!("Passphrase for {}: ", key_file.display()))?;
        let key = load_key_file(key_file, &pass)?;
        let listed = root
            .signed
            .role_keys("root")?
            .keyids
            .contains(&key.key_id());
        if !listed {
            bail!(
                "key {} is not a root key of the staged root of {gun}",
                key.key_id()
            );
        }
        root.sign(&key);
        files[0].1 = root.to_bytes();
        staging.save(&files[..1])?;
        self.root_signing(gun, &root)
    }

    /// Publish the staged root (and what was staged with it) once it has
    /// enough signatures.
    pub fn root_publish(&self, gun: &Gun) -> Result<RootSigning> {
        let (staging, files, root) = self.staged_root(gun)?;
        let mut report = self.root_signing(gun, &root)?;
        if report.needed > 0 {
            bail!(
                "the staged root of {gun} has {} of {} signatures; {} more needed (tagtrust root sign {gun} --key FILE)",
                report.signatures,
                report.threshold,
                report.needed
            );
        }
        self.server_client()?
            .publish(gun, &files)
            .with_context(|| format!("publishing the staged root of {gun}"))?;
        if root.signed.version == 1 {
            let dir = self.home.metadata_dir(&self.server, gun);
            crate::lookup::store_initial_root(&dir, &files[0].1, 1)?;
        }
        staging.clear()?;
        report.published = true;
        Ok(report)
    }
}
