//! Establishing trust in a GUN's root: the root stored by an earlier run,
//! a root file, a root pinned in config (a file, or root key IDs the first
//! root fetched must be signed by), or trust on first use. The first root
//! trusted is kept as the anchor `history` verifies old versions from.
//!
//! What comes out is a [`VerifiedRoot`], read and checked once, that the
//! [`crate::updater::Updater`] starts from.

use crate::atomic_file::{read, read_optional, write_file_atomically, FileError};
use crate::cause::{holds_cause, Cause};
use crate::fetch::{FetchError, Fetcher};
use crate::home::TrustPin;
use crate::notices::Notices;
use crate::trusted::{TrustError, VerifiedRoot};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tagtrust_shared::verify::verify_signatures;
use tagtrust_shared::{Error as TufError, Gun, Metadata, Root};

/// Where the first root trusted for a GUN is kept (inside its metadata
/// directory): `history` verifies old versions forward from it.
pub const ANCHOR_DIR: &str = "anchor";

/// Where the first trusted root of a GUN came from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrustSource {
    /// Already trusted from an earlier run.
    Stored,
    /// A root file given on the command line.
    RootFile,
    /// A root file pinned in config.
    PinnedFile,
    /// Fetched and checked against root key IDs pinned in config.
    PinnedKeys,
    /// Trust on first use: accepted whatever the server served.
    FirstUse,
}

/// Why a root does not satisfy a trust pin.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// A pin configured after trust was established describes other trust.
    #[error("the trust pin of {gun} in config.toml ({pin}) disagrees with the trust stored in {dir}: {trusted}; remove the pin, or remove that directory to start again from the pin")]
    DisagreesWithStoredTrust {
        gun: String,
        /// The pin, in words.
        pin: String,
        dir: PathBuf,
        /// The stored roots, in words.
        trusted: String,
    },

    /// The pin itself is impossible (its threshold: [`Cause::Config`]),
    /// the root is not signed by the pin's threshold of the pinned keys
    /// ([`Cause::Metadata`]), or the stored roots cannot be read.
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(PinError);

/// Why no root of a GUN could be trusted.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The first root could not be downloaded.
    #[error(
        "fetching the first root from {url} (is the GUN initialised on this server?): {source}"
    )]
    FirstRoot { url: String, source: FetchError },

    /// The initial root is not root metadata.
    #[error("initial root: {0}")]
    InitialRoot(TufError),

    /// The GUN holds a Notary v1 repository, not spec TUF.
    #[error("{gun} is a Notary v1 repository, not spec TUF: read it with the notary CLI (or Docker Content Trust), or convert it with `tagtrust migrate notary {gun} --trust-dir DIR --to NEW_GUN`")]
    NotaryRepository { gun: String },

    /// The initial root is not signed by a threshold of its own root keys.
    #[error("initial root is not signed by its own root keys: {0}")]
    NotSelfSigned(TufError),

    /// The initial root is not signed as the pin requires.
    #[error("initial root does not match the pinned root keys: {0}")]
    PinnedKeys(PinError),

    /// A pin set after trust was established disagrees with it.
    #[error(transparent)]
    Pin(#[from] PinError),

    /// The stored root no longer verifies.
    #[error("loading trusted metadata of {gun}: {source}")]
    StoredRoot {
        gun: String,
        source: Box<TrustError>,
    },

    /// Nothing is trusted yet, and nothing may be fetched.
    #[error("no trusted root at {0} (initialise the client with a trusted root first)")]
    NoTrustedRoot(PathBuf),

    /// Local file system trouble.
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(BootstrapError);

/// The root a repository is opened with, and how it came to be trusted.
#[derive(Debug, Clone)]
pub struct EstablishedTrust {
    pub root: VerifiedRoot,
    pub source: TrustSource,
    /// Key IDs of the root role when trust was established now (not `Stored`).
    pub new_root_keyids: Vec<String>,
}

/// How trust in a GUN not seen before may be established.
pub struct Bootstrap<'a> {
    pub gun: &'a Gun,
    /// The GUN's trusted metadata directory.
    pub dir: &'a Path,
    /// The pin configured for the GUN (empty: none).
    pub pin: &'a TrustPin,
    /// A root file the caller gave (`--root`).
    pub root_file: Option<&'a Path>,
    /// Where notices (trust on first use, an ignored `--root`) go.
    pub notices: &'a Notices,
}

impl Bootstrap<'_> {
    /// The stored root of the GUN (the pin checked against it), or a new
    /// root established by root file, pinned file, pinned keys or first
    /// use, which is then stored (and kept as the anchor). `first_root`
    /// downloads `1.root.json` ([`fetch_first_root`]) when neither file is
    /// given.
    pub fn establish(
        &self,
        first_root: impl FnOnce() -> Result<Vec<u8>, BootstrapError>,
    ) -> Result<EstablishedTrust, BootstrapError> {
        let gun = self.gun;
        if let Some(root) = stored_root(self.dir, gun)? {
            if self.pin.is_set() {
                check_pin_agrees_with_stored_trust(self.dir, self.pin, gun)?;
            }
            if let Some(file) = self.root_file {
                // Trust, once established, only moves forward along the root
                // chain; a root file cannot reset it. Say so rather than
                // silently ignore the option.
                self.notices.push(format!(
                    "{gun} is already trusted here; --root {} is ignored (the stored root and its chain are used)",
                    file.display()
                ));
            }
            return Ok(EstablishedTrust {
                root,
                source: TrustSource::Stored,
                new_root_keyids: Vec::new(),
            });
        }
        let (bytes, source) = if let Some(file) = self.root_file {
            (read_root_file(file)?, TrustSource::RootFile)
        } else if let Some(file) = &self.pin.root_file {
            (read_root_file(file)?, TrustSource::PinnedFile)
        } else {
            let bytes = first_root()?;
            let source = if self.pin.root_keys.is_empty() {
                TrustSource::FirstUse
            } else {
                TrustSource::PinnedKeys
            };
            (bytes, source)
        };
        let root = Metadata::<Root>::from_bytes(&bytes).map_err(|e| match e {
            // Notary's dialect names its roles with a capital: this GUN is
            // a Notary repository, which a spec-TUF client cannot read.
            TufError::WrongType { found, .. } if found == "Root" => {
                BootstrapError::NotaryRepository {
                    gun: gun.to_string(),
                }
            }
            e => BootstrapError::InitialRoot(e),
        })?;
        // A root must be signed by its own root keys; a pin additionally
        // requires a threshold of the pinned keys.
        let root = VerifiedRoot::verify(root).map_err(BootstrapError::NotSelfSigned)?;
        let md = root.metadata();
        if source == TrustSource::PinnedKeys {
            check_pinned_keys(md, self.pin).map_err(BootstrapError::PinnedKeys)?;
        }
        let keyids = md
            .signed
            .role_keys("root")
            .map_err(BootstrapError::InitialRoot)?
            .keyids
            .clone();
        store_initial_root(self.dir, &bytes, md.signed.version)?;
        if source == TrustSource::FirstUse {
            // Said here, not by each command: every command that meets a new
            // GUN (lookup, list, status, tag set, …) must tell the user.
            self.notices.push(format!(
                "trusting {gun} on first use: root v{} with root keys {}",
                md.signed.version,
                keyids.join(", ")
            ));
        }
        Ok(EstablishedTrust {
            root,
            source,
            new_root_keyids: keyids,
        })
    }
}

/// Trust on first use starts from version 1 so every later rotation in the
/// chain is verified, not just accepted.
pub fn fetch_first_root(
    fetcher: &dyn Fetcher,
    metadata_base_url: &str,
    max_length: u64,
) -> Result<Vec<u8>, BootstrapError> {
    let url = format!("{metadata_base_url}1.root.json");
    fetcher
        .fetch(&url, max_length)
        .map_err(|source| BootstrapError::FirstRoot { url, source })
}

/// The root stored in `dir` by an earlier run, verified, if there is one.
pub fn stored_root(dir: &Path, gun: &Gun) -> Result<Option<VerifiedRoot>, BootstrapError> {
    let Some(bytes) = read_optional(&dir.join("root.json"))? else {
        return Ok(None);
    };
    VerifiedRoot::from_bytes(&bytes)
        .map(Some)
        .map_err(|source| BootstrapError::StoredRoot {
            gun: gun.to_string(),
            source: Box::new(source),
        })
}

/// Make `bytes` (a root just established as trusted, of `version`) the
/// trusted root of `dir`, and keep it as the anchor for `history`.
pub fn store_initial_root(dir: &Path, bytes: &[u8], version: u64) -> Result<(), FileError> {
    write_file_atomically(
        &dir.join(ANCHOR_DIR).join(format!("{version}.root.json")),
        bytes,
    )?;
    write_file_atomically(&dir.join("root.json"), bytes)
}

/// `sha256:<hex>` of a root file, naming it in messages (as an OCI digest
/// would).
fn root_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", tagtrust_shared::hashes::sha256_hex(bytes))
}

fn read_root_file(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path)
        .map_err(|e| FileError::new(format!("reading root file {}", path.display()), e))
}

/// A pin configured after trust was established must describe that trust:
/// a pinned root file must be the first root this home trusted (the
/// anchor) or the current one, byte for byte; pinned root keys must have
/// signed (a pin threshold of) one of those. Anything else is an error
/// naming both, never silently ignored.
fn check_pin_agrees_with_stored_trust(
    dir: &Path,
    pin: &TrustPin,
    gun: &Gun,
) -> Result<(), PinError> {
    let current = read(&dir.join("root.json"))?;
    let mut stored = vec![current];
    if let Ok(anchor) = earliest_anchor(dir) {
        stored.insert(0, anchor);
    }
    let describe = |bytes: &[u8]| -> String {
        match Metadata::<Root>::from_bytes(bytes) {
            Ok(root) => format!(
                "root v{} ({}, root keys {})",
                root.signed.version,
                root_digest(bytes),
                root.signed
                    .role_keys("root")
                    .map(|k| k.keyids.join(", "))
                    .unwrap_or_default()
            ),
            Err(_) => format!("a root ({})", root_digest(bytes)),
        }
    };
    let disagrees = |pin: String| PinError::DisagreesWithStoredTrust {
        gun: gun.to_string(),
        pin,
        dir: dir.to_path_buf(),
        trusted: stored
            .iter()
            .map(|b| describe(b))
            .collect::<Vec<_>>()
            .join(" and "),
    };
    if let Some(file) = &pin.root_file {
        let pinned = read_root_file(file)?;
        if !stored.contains(&pinned) {
            return Err(disagrees(format!(
                "root file {}: {}",
                file.display(),
                describe(&pinned)
            )));
        }
    }
    if !pin.root_keys.is_empty() {
        let agrees = stored.iter().any(|bytes| {
            Metadata::<Root>::from_bytes(bytes)
                .map_err(PinError::from)
                .and_then(|root| check_pinned_keys(&root, pin))
                .is_ok()
        });
        if !agrees {
            return Err(disagrees(format!(
                "root keys {}, threshold {}",
                pin.root_keys.join(", "),
                pin.threshold()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|e| e.to_string()),
            )));
        }
    }
    Ok(())
}

/// The earliest root kept in the anchor directory of `dir`.
pub fn earliest_anchor(dir: &Path) -> Result<Vec<u8>, FileError> {
    let anchors = dir.join(ANCHOR_DIR);
    let none =
        |e: std::io::Error| FileError::new(format!("no anchor root in {}", anchors.display()), e);
    let earliest = std::fs::read_dir(&anchors)
        .map_err(none)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version: u64 = name.strip_suffix(".root.json")?.parse().ok()?;
            Some((version, e.path()))
        })
        .min_by_key(|(version, _)| *version)
        .ok_or_else(|| none(std::io::ErrorKind::NotFound.into()))?;
    read(&earliest.1)
}

/// The root must be signed by the pin's threshold of the pinned keys
/// ([`TrustPin::threshold`]: its own number, not the root's). A pin names a
/// key by the SHA-256 of its canonical form, so only keys whose content
/// hashes to a pinned ID count: the root chooses which IDs it lists under
/// which keys, and must not be able to list its own key under a pinned ID.
fn check_pinned_keys(root: &Metadata<Root>, pin: &TrustPin) -> Result<(), PinError> {
    let threshold = pin.threshold()?;
    let pinned_keys: std::collections::BTreeMap<String, tagtrust_shared::PublicKey> = root
        .signed
        .keys
        .iter()
        .filter(|(id, key)| pin.root_keys.contains(id) && key.key_id() == **id)
        .map(|(id, key)| (id.clone(), key.clone()))
        .collect();
    verify_signatures(
        "root",
        root.canonical_signed(),
        &root.signatures,
        &pinned_keys,
        &pin.root_keys,
        threshold,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use tagtrust_shared::metadata::TOP_LEVEL_ROLES;
    use tagtrust_shared::SigningKey;

    fn root_signed_by(key: &SigningKey, listed_as: &str) -> Metadata<Root> {
        let mut root = Root::new(Utc::now() + chrono::Duration::days(1));
        let mut public = key.public_key();
        for role in TOP_LEVEL_ROLES {
            root.add_key(role, public.clone());
        }
        // Re-list the key under `listed_as` (an attacker choosing the ID).
        if listed_as != key.key_id() {
            public = root.keys.remove(&key.key_id()).unwrap();
            root.keys.insert(listed_as.to_string(), public);
            for role in root.roles.values_mut() {
                role.keyids = vec![listed_as.to_string()];
            }
        }
        let mut md = Metadata::new(root).unwrap();
        let mut sig = key.sign(md.canonical_signed());
        sig.keyid = listed_as.to_string();
        md.signatures.push(sig);
        md
    }

    /// A pin of `keys`, with the pin's default threshold.
    fn key_pin(keys: &[&SigningKey]) -> TrustPin {
        TrustPin {
            root_file: None,
            root_keys: keys.iter().map(|k| k.key_id()).collect(),
            root_threshold: None,
        }
    }

    /// A temporary metadata directory for `acme/app`.
    fn gun_dir() -> (tempfile::TempDir, Gun) {
        (
            tempfile::tempdir().unwrap(),
            Gun::parse("acme/app").unwrap(),
        )
    }

    /// A fresh key and a root listing it, signed by it.
    fn self_signed() -> (SigningKey, Metadata<Root>) {
        let key = SigningKey::generate();
        let root = root_signed_by(&key, &key.key_id());
        (key, root)
    }

    #[test]
    fn a_pinned_key_must_sign() {
        let pinned = SigningKey::generate();
        let pin = key_pin(&[&pinned]);
        check_pinned_keys(&root_signed_by(&pinned, &pinned.key_id()), &pin).unwrap();
        let other = SigningKey::generate();
        assert!(check_pinned_keys(&root_signed_by(&other, &other.key_id()), &pin).is_err());
    }

    #[test]
    fn an_attacker_key_listed_under_the_pinned_id_does_not_count() {
        let pinned = SigningKey::generate();
        let attacker = SigningKey::generate();
        let pin = key_pin(&[&pinned]);
        let forged = root_signed_by(&attacker, &pinned.key_id());
        // It is self-consistent (signed by the key it lists)...
        forged.signed.verify_role("root", &forged).unwrap();
        // ...but not by the pinned key.
        assert!(check_pinned_keys(&forged, &pin).is_err());
    }

    /// Item 4 of issue 7: with K1 and K2 pinned for a 2-of-2 root, a root
    /// listing only K1 with threshold 1, signed by K1, is refused: the pin
    /// says how many pinned keys must sign, not the root being checked.
    #[test]
    fn the_pin_threshold_is_the_pins_own() {
        let k1 = SigningKey::generate();
        let k2 = SigningKey::generate();
        let pin = key_pin(&[&k1, &k2]);
        let forged = root_signed_by(&k1, &k1.key_id());
        assert_eq!(forged.signed.role_keys("root").unwrap().threshold, 1);
        forged.signed.verify_role("root", &forged).unwrap();
        let err = check_pinned_keys(&forged, &pin).unwrap_err();
        assert!(format!("{err:#}").contains("threshold"), "{err:#}");
        // Explicitly 1 of 2: K1 alone is enough.
        let one_of_two = TrustPin {
            root_threshold: Some(1),
            ..pin.clone()
        };
        check_pinned_keys(&forged, &one_of_two).unwrap();
        // Both pinned keys signing meets the default.
        let mut both = forged.clone();
        both.signed.add_key("root", k2.public_key());
        let mut both = Metadata::new(both.signed).unwrap();
        both.sign(&k1);
        both.sign(&k2);
        check_pinned_keys(&both, &pin).unwrap();
    }

    /// Item 12 of issue 7: a pin configured after first use is checked
    /// against the stored trust; agreement is quiet, disagreement an error
    /// naming the pin and what is trusted.
    #[test]
    fn a_pin_added_after_first_use_must_agree_with_stored_trust() {
        let (dir, gun) = gun_dir();
        let (trusted_key, trusted) = self_signed();
        let trusted = trusted.to_bytes();
        store_initial_root(dir.path(), &trusted, 1).unwrap();
        check_pin_agrees_with_stored_trust(dir.path(), &key_pin(&[&trusted_key]), &gun).unwrap();
        let other = SigningKey::generate();
        let err = check_pin_agrees_with_stored_trust(dir.path(), &key_pin(&[&other]), &gun)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&other.key_id()) && err.contains(&trusted_key.key_id()),
            "names both: {err}"
        );

        let file_pin = |bytes: &[u8]| {
            let path = dir.path().join("pinned-root.json");
            std::fs::write(&path, bytes).unwrap();
            TrustPin {
                root_file: Some(path),
                root_keys: Vec::new(),
                root_threshold: None,
            }
        };
        check_pin_agrees_with_stored_trust(dir.path(), &file_pin(&trusted), &gun).unwrap();
        let forged = root_signed_by(&other, &other.key_id()).to_bytes();
        let err = check_pin_agrees_with_stored_trust(dir.path(), &file_pin(&forged), &gun)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&root_digest(&forged)) && err.contains(&root_digest(&trusted)),
            "names both: {err}"
        );
    }

    fn bootstrap<'a>(
        gun: &'a Gun,
        dir: &'a Path,
        pin: &'a TrustPin,
        root_file: Option<&'a Path>,
        notices: &'a Notices,
    ) -> Bootstrap<'a> {
        Bootstrap {
            gun,
            dir,
            pin,
            root_file,
            notices,
        }
    }

    /// First use stores the root and its anchor and says so; the next run
    /// starts from the stored root without fetching, and a `--root` given
    /// then is ignored with a notice.
    #[test]
    fn first_use_is_stored_said_and_then_trusted_as_stored() {
        let (dir, gun) = gun_dir();
        let (key, root) = self_signed();
        let root = root.to_bytes();
        let (pin, notices) = (TrustPin::default(), Notices::default());
        let trust = bootstrap(&gun, dir.path(), &pin, None, &notices)
            .establish(|| Ok(root.clone()))
            .unwrap();
        assert_eq!(trust.source, TrustSource::FirstUse);
        assert_eq!(trust.new_root_keyids, vec![key.key_id()]);
        assert_eq!(earliest_anchor(dir.path()).unwrap(), root);
        let said = notices.take();
        assert!(said[0].contains("on first use"), "{said:?}");

        let file = dir.path().join("other-root.json");
        let trust = bootstrap(&gun, dir.path(), &pin, Some(&file), &notices)
            .establish(|| panic!("a stored root is not fetched again"))
            .unwrap();
        assert_eq!(trust.source, TrustSource::Stored);
        assert_eq!(trust.root.metadata().to_bytes(), root);
        assert!(notices.take()[0].contains("is ignored"));
    }

    /// A root not signed by its own keys is refused and nothing is stored;
    /// an empty directory has no stored root.
    #[test]
    fn a_root_not_signed_by_its_own_keys_is_not_stored() {
        let (dir, gun) = gun_dir();
        assert!(stored_root(dir.path(), &gun).unwrap().is_none());
        let (_, mut root) = self_signed();
        root.signatures.clear();
        let (pin, notices) = (TrustPin::default(), Notices::default());
        let err = bootstrap(&gun, dir.path(), &pin, None, &notices)
            .establish(|| Ok(root.to_bytes()))
            .unwrap_err();
        assert!(matches!(err, BootstrapError::NotSelfSigned(_)), "{err}");
        assert!(stored_root(dir.path(), &gun).unwrap().is_none());
        assert!(notices.take().is_empty());
    }
}
