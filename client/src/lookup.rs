//! Resolving a tag to a digest the consumer can prove is signed, not rolled
//! back and not frozen: trust bootstrap for a GUN seen for the first time,
//! then the TUF client workflow of [`crate::updater`].

use crate::fetch::{Fetcher, HttpFetcher, HttpOptions, OfflineFetcher};
use crate::home::{write_file_atomically, Home, TrustPin};
use crate::remote::metadata_url;
use crate::updater::{Updater, UpdaterConfig};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;
use tagtrust_shared::verify::verify_signatures;
use tagtrust_shared::{Gun, ImageReference, Metadata, Role, Root};

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

/// A repository whose metadata has just been brought up to date and verified.
pub struct Repository {
    pub gun: Gun,
    pub updater: Updater<Box<dyn Fetcher>>,
    pub trust: TrustSource,
    /// Key IDs of the root role when trust was established now (not `Stored`).
    pub new_root_keyids: Vec<String>,
}

/// Things the user should be told that are not errors (a branch of the
/// delegation tree skipped, a `max_age` the server cannot meet). The
/// library never prints: it hands each line to the caller's sink, if any,
/// as it happens, and keeps them for [`Self::take`]. Lines are raw text
/// (they can quote metadata); the renderer escapes them. Clones share one
/// log.
#[derive(Clone, Default)]
pub struct Notices {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    sink: Option<std::sync::Arc<NoticeSink>>,
}

/// Where a caller wants notices shown as they happen.
type NoticeSink = dyn Fn(&str) + Send + Sync;

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("log", &self.log)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Notices {
    /// Notices that are also handed to `sink` as they happen.
    pub fn with_sink(sink: impl Fn(&str) + Send + Sync + 'static) -> Notices {
        Notices {
            log: Default::default(),
            sink: Some(std::sync::Arc::new(sink)),
        }
    }

    pub fn push(&self, line: impl Into<String>) {
        let line = line.into();
        if let Some(sink) = &self.sink {
            sink(&line);
        }
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// The notices so far, removing them from the log.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Options a consumer can give.
#[derive(Debug, Default, Clone)]
pub struct OpenOptions {
    /// Trust this root file for a GUN seen for the first time.
    pub root_file: Option<std::path::PathBuf>,
    /// Bearer token for servers that require `pull:` for reads.
    pub token: Option<String>,
    /// Use only local trusted metadata; fetch nothing.
    pub offline: bool,
    /// Offline only: accept metadata expired at most this long ago.
    pub max_stale: Option<std::time::Duration>,
    /// Refuse a timestamp signed longer ago than this, even if unexpired.
    pub max_age: Option<std::time::Duration>,
    /// Where notices go.
    pub notices: Notices,
}

/// The fetcher every read of a repository's metadata uses: the consumer's
/// token if any, and `TAGTRUST_HTTP_TIMEOUT_SECS` (whole seconds, one or
/// more) as the whole-request limit for slow links and for the
/// slow-retrieval attack test.
pub fn http_fetcher(options: &OpenOptions) -> Result<HttpFetcher> {
    let mut http = HttpOptions::default();
    if let Some(secs) = std::env::var("TAGTRUST_HTTP_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
    {
        http.timeout = std::time::Duration::from_secs(secs);
    }
    if let Some(token) = &options.token {
        http = http.with_bearer_token(token);
    }
    Ok(HttpFetcher::new(http)?)
}

/// Establish trust in `gun` if needed, then run the TUF update workflow.
pub fn open_repository(
    home: &Home,
    server: &str,
    gun: &Gun,
    options: &OpenOptions,
) -> Result<Repository> {
    let dir = home.metadata_dir(server, gun);
    let base_url = metadata_url(server, gun);
    if options.offline {
        let mut updater = Updater::new(
            &dir,
            &base_url,
            Box::new(OfflineFetcher) as Box<dyn Fetcher>,
            UpdaterConfig::default(),
        )
        .with_context(|| format!("offline: no trusted metadata of {gun} from {server} yet"))?;
        // A grace reaching before the calendar's start is a user error, not
        // a panic in date arithmetic.
        let reference_time = chrono::Duration::from_std(options.max_stale.unwrap_or_default())
            .ok()
            .and_then(|grace| Utc::now().checked_sub_signed(grace))
            .context("--max-stale is too large")?;
        updater.load_local(reference_time).with_context(|| {
            format!("offline: the local trusted metadata of {gun} cannot be used (give --max-stale to accept expired metadata)")
        })?;
        check_max_age(&updater, options.max_age)?;
        return Ok(Repository {
            gun: gun.clone(),
            updater,
            trust: TrustSource::Stored,
            new_root_keyids: Vec::new(),
        });
    }
    let fetcher = http_fetcher(options)?;
    let (trust, new_root_keyids) =
        ensure_trusted_root(home, &dir, &base_url, &fetcher, gun, options)?;
    let mut updater = Updater::new(
        &dir,
        &base_url,
        Box::new(fetcher) as Box<dyn Fetcher>,
        UpdaterConfig::default(),
    )
    .with_context(|| format!("loading trusted metadata of {gun}"))?;
    updater
        .refresh()
        .with_context(|| format!("updating trusted metadata of {gun} from {server}"))?;
    if let Some(line) = max_age_notice(options.max_age, updater.server_timestamp_max_age()) {
        options.notices.push(line);
    }
    check_max_age(&updater, options.max_age)?;
    Ok(Repository {
        gun: gun.clone(),
        updater,
        trust,
        new_root_keyids,
    })
}

/// Said before the `max_age` check: a `max_age` shorter than the age the
/// server says a healthy timestamp reaches
/// ([`crate::fetch::TIMESTAMP_MAX_AGE_HEADER`]) will report a freeze for
/// part of every re-sign cycle.
fn max_age_notice(
    max_age: Option<std::time::Duration>,
    server_max_age: Option<std::time::Duration>,
) -> Option<String> {
    let (max_age, server) = (max_age?, server_max_age?);
    (max_age < server).then(|| {
        format!(
            "max_age {} is shorter than the {} this server lets its timestamp age before re-signing it; expect freeze refusals while the server is healthy (use a max_age of at least {})",
            humantime::format_duration(max_age),
            humantime::format_duration(server),
            humantime::format_duration(server)
        )
    })
}

/// The consumer's `max_age` policy: a timestamp signed longer ago than that
/// is refused even if it has not expired ("signed but silently outdated").
fn check_max_age(
    updater: &Updater<Box<dyn Fetcher>>,
    max_age: Option<std::time::Duration>,
) -> Result<()> {
    let Some(max_age) = max_age else {
        return Ok(());
    };
    let timestamp = updater
        .trusted()
        .timestamp()
        .context("no trusted timestamp")?;
    let signed_at = tagtrust_shared::metadata::signed_at(&timestamp.signed.extra).context(
        "max_age is set but the timestamp does not say when it was signed (x-tagtrust-signed-at)",
    )?;
    let age = (Utc::now() - signed_at).to_std().unwrap_or_default();
    if age > max_age {
        bail!(
            "freeze suspected: the timestamp was signed {} ago, longer than max_age {}",
            humantime::format_duration(std::time::Duration::from_secs(age.as_secs())),
            humantime::format_duration(max_age)
        );
    }
    Ok(())
}

/// Make sure `dir/root.json` holds a root we have a reason to trust.
fn ensure_trusted_root(
    home: &Home,
    dir: &Path,
    base_url: &str,
    fetcher: &HttpFetcher,
    gun: &Gun,
    options: &OpenOptions,
) -> Result<(TrustSource, Vec<String>)> {
    let root_path = dir.join("root.json");
    let pin = home
        .config()?
        .pins
        .get(gun.as_str())
        .cloned()
        .unwrap_or_default();
    if root_path.exists() {
        if pin.is_set() {
            check_pin_agrees_with_stored_trust(dir, &pin, gun)?;
        }
        if let Some(file) = &options.root_file {
            // Trust, once established, only moves forward along the root
            // chain; a root file cannot reset it. Say so rather than
            // silently ignore the option.
            options.notices.push(format!(
                "{gun} is already trusted here; --root {} is ignored (the stored root and its chain are used)",
                file.display()
            ));
        }
        return Ok((TrustSource::Stored, Vec::new()));
    }
    let (bytes, source) = if let Some(file) = &options.root_file {
        (read_root_file(file)?, TrustSource::RootFile)
    } else if let Some(file) = &pin.root_file {
        (read_root_file(file)?, TrustSource::PinnedFile)
    } else {
        let bytes = fetch_first_root(fetcher, base_url)?;
        let source = if pin.root_keys.is_empty() {
            TrustSource::FirstUse
        } else {
            TrustSource::PinnedKeys
        };
        (bytes, source)
    };
    let root = Metadata::<Root>::from_bytes(&bytes).context("initial root")?;
    // A root must be signed by its own root keys; a pin additionally
    // requires a threshold of the pinned keys.
    root.signed
        .verify_role("root", &root)
        .context("initial root is not signed by its own root keys")?;
    if source == TrustSource::PinnedKeys {
        check_pinned_keys(&root, &pin)
            .context("initial root does not match the pinned root keys")?;
    }
    let keyids = root.signed.role_keys("root")?.keyids.clone();
    store_initial_root(dir, &bytes, root.signed.version)?;
    if source == TrustSource::FirstUse {
        // Said here, not by each command: every command that meets a new
        // GUN (lookup, list, status, tag set, …) must tell the user.
        options.notices.push(format!(
            "trusting {gun} on first use: root v{} with root keys {}",
            root.signed.version,
            keyids.join(", ")
        ));
    }
    Ok((source, keyids))
}

/// Where the first root trusted for a GUN is kept (inside its metadata
/// directory): `history` verifies old versions forward from it.
pub const ANCHOR_DIR: &str = "anchor";

/// Make `bytes` (a root just established as trusted, of `version`) the
/// trusted root of `dir`, and keep it as the anchor for `history`.
pub fn store_initial_root(dir: &Path, bytes: &[u8], version: u64) -> Result<()> {
    write_file_atomically(
        &dir.join(ANCHOR_DIR).join(format!("{version}.root.json")),
        bytes,
    )?;
    write_file_atomically(&dir.join("root.json"), bytes)
}

fn read_root_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading root file {}", path.display()))
}

/// Trust on first use starts from version 1 so every later rotation in the
/// chain is verified, not just accepted.
fn fetch_first_root(fetcher: &HttpFetcher, base_url: &str) -> Result<Vec<u8>> {
    use crate::fetch::Fetcher;
    let url = format!("{base_url}1.root.json");
    fetcher
        .fetch(&url, UpdaterConfig::default().root_max_length)
        .with_context(|| {
            format!("fetching the first root from {url} (is the GUN initialised on this server?)")
        })
}

/// A pin configured after trust was established must describe that trust:
/// a pinned root file must be the first root this home trusted (the
/// anchor) or the current one, byte for byte; pinned root keys must have
/// signed (a pin threshold of) one of those. Anything else is an error
/// naming both, never silently ignored.
fn check_pin_agrees_with_stored_trust(dir: &Path, pin: &TrustPin, gun: &Gun) -> Result<()> {
    let current = std::fs::read(dir.join("root.json"))
        .with_context(|| format!("reading {}", dir.join("root.json").display()))?;
    let mut stored = vec![current];
    if let Ok(anchor) = earliest_anchor(dir) {
        stored.insert(0, anchor);
    }
    let describe = |bytes: &[u8]| -> String {
        match Metadata::<Root>::from_bytes(bytes) {
            Ok(root) => format!(
                "root v{} ({}, root keys {})",
                root.signed.version,
                crate::registry::sha256_digest(bytes),
                root.signed
                    .role_keys("root")
                    .map(|k| k.keyids.join(", "))
                    .unwrap_or_default()
            ),
            Err(_) => format!("a root ({})", crate::registry::sha256_digest(bytes)),
        }
    };
    let trusted = || {
        stored
            .iter()
            .map(|b| describe(b))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    if let Some(file) = &pin.root_file {
        let pinned = read_root_file(file)?;
        if !stored.contains(&pinned) {
            bail!(
                "the trust pin of {gun} in config.toml (root file {}: {}) disagrees with the trust stored in {}: {}; remove the pin, or remove that directory to start again from the pin",
                file.display(),
                describe(&pinned),
                dir.display(),
                trusted()
            );
        }
    }
    if !pin.root_keys.is_empty() {
        let agrees = stored.iter().any(|bytes| {
            Metadata::<Root>::from_bytes(bytes)
                .map_err(anyhow::Error::from)
                .and_then(|root| check_pinned_keys(&root, pin))
                .is_ok()
        });
        if !agrees {
            bail!(
                "the trust pin of {gun} in config.toml (root keys {}, threshold {}) disagrees with the trust stored in {}: {}; remove the pin, or remove that directory to start again from the pin",
                pin.root_keys.join(", "),
                pin.threshold()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|e| e.to_string()),
                dir.display(),
                trusted()
            );
        }
    }
    Ok(())
}

/// The earliest root kept in the anchor directory of `dir`.
pub(crate) fn earliest_anchor(dir: &Path) -> Result<Vec<u8>> {
    let anchors = dir.join(ANCHOR_DIR);
    let earliest = std::fs::read_dir(&anchors)
        .with_context(|| format!("no anchor root in {}", anchors.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version: u64 = name.strip_suffix(".root.json")?.parse().ok()?;
            Some((version, e.path()))
        })
        .min_by_key(|(version, _)| *version)
        .with_context(|| format!("no anchor root in {}", anchors.display()))?;
    std::fs::read(&earliest.1).with_context(|| format!("reading {}", earliest.1.display()))
}

/// The root must be signed by the pin's threshold of the pinned keys
/// ([`TrustPin::threshold`]: its own number, not the root's). A pin names a
/// key by the SHA-256 of its canonical form, so only keys whose content
/// hashes to a pinned ID count: the root chooses which IDs it lists under
/// which keys, and must not be able to list its own key under a pinned ID.
fn check_pinned_keys(root: &Metadata<Root>, pin: &TrustPin) -> Result<()> {
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

    #[test]
    fn a_pinned_key_must_sign() {
        let pinned = SigningKey::generate();
        let pin = TrustPin {
            root_file: None,
            root_keys: vec![pinned.key_id()],
            root_threshold: None,
        };
        check_pinned_keys(&root_signed_by(&pinned, &pinned.key_id()), &pin).unwrap();
        let other = SigningKey::generate();
        assert!(check_pinned_keys(&root_signed_by(&other, &other.key_id()), &pin).is_err());
    }

    #[test]
    fn an_attacker_key_listed_under_the_pinned_id_does_not_count() {
        let pinned = SigningKey::generate();
        let attacker = SigningKey::generate();
        let pin = TrustPin {
            root_file: None,
            root_keys: vec![pinned.key_id()],
            root_threshold: None,
        };
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
        let pin = TrustPin {
            root_file: None,
            root_keys: vec![k1.key_id(), k2.key_id()],
            root_threshold: None,
        };
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
        let dir = tempfile::tempdir().unwrap();
        let gun = Gun::parse("acme/app").unwrap();
        let trusted_key = SigningKey::generate();
        let trusted = root_signed_by(&trusted_key, &trusted_key.key_id()).to_bytes();
        store_initial_root(dir.path(), &trusted, 1).unwrap();
        let key_pin = |keys: Vec<String>| TrustPin {
            root_file: None,
            root_keys: keys,
            root_threshold: None,
        };
        check_pin_agrees_with_stored_trust(dir.path(), &key_pin(vec![trusted_key.key_id()]), &gun)
            .unwrap();
        let other = SigningKey::generate();
        let err =
            check_pin_agrees_with_stored_trust(dir.path(), &key_pin(vec![other.key_id()]), &gun)
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
            err.contains(&crate::registry::sha256_digest(&forged))
                && err.contains(&crate::registry::sha256_digest(&trusted)),
            "names both: {err}"
        );
    }

    #[test]
    fn max_age_shorter_than_the_servers_cadence_is_said() {
        let h = |n: u64| std::time::Duration::from_secs(n * 3600);
        let line = max_age_notice(Some(h(2)), Some(h(12))).unwrap();
        assert!(
            line.contains("max_age 2h") && line.contains("12h"),
            "{line}"
        );
        assert_eq!(max_age_notice(Some(h(12)), Some(h(12))), None);
        assert_eq!(max_age_notice(None, Some(h(12))), None);
        assert_eq!(max_age_notice(Some(h(2)), None), None);
    }
}

/// Version and expiry of one role the answer relied on.
#[derive(Debug, Clone, Serialize)]
pub struct RoleState {
    pub version: u64,
    pub expires: DateTime<Utc>,
}

impl RoleState {
    fn of<T: Role>(md: &Metadata<T>) -> RoleState {
        RoleState {
            version: md.signed.version(),
            expires: md.signed.expires(),
        }
    }
}

/// A verified answer to "what does GUN:TAG point to".
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub gun: String,
    pub tag: String,
    pub digest: String,
    pub size: u64,
    pub media_type: Option<String>,
    /// The targets role that signed the tag (`targets` or a delegated role).
    pub signed_by: String,
    pub trust: TrustSource,
    pub root: RoleState,
    pub timestamp: RoleState,
    pub snapshot: RoleState,
    pub targets: RoleState,
}

/// Resolve `reference` (`GUN:TAG`) with every TUF check applied.
pub fn lookup(
    home: &Home,
    server: &str,
    reference: &ImageReference,
    options: &OpenOptions,
) -> Result<(Resolution, Repository)> {
    let mut repo = open_repository(home, server, &reference.gun, options)?;
    let info = match repo.updater.get_targetinfo(&reference.tag) {
        Ok(info) => info,
        // Most often a delegation whose keys were just replaced: its stored
        // metadata is signed by the old keys until the new holder publishes.
        Err(e @ crate::trusted::UpdateError::Signature { .. }) => {
            return Err(anyhow::Error::new(e).context(format!(
                "searching the signed targets of {}: a role on the search path for {:?} is not signed by the keys delegated to it now (if its keys were replaced, its new key holder has not published yet)",
                reference.gun, reference.tag
            )))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("searching the signed targets of {}", reference.gun)))
        }
    };
    let Some(info) = info else {
        bail!(
            "{reference} is not signed: no trusted targets metadata lists tag {:?}",
            reference.tag
        );
    };
    let digest = info
        .target
        .digest()
        .with_context(|| format!("{reference} is signed without a sha256 hash"))?;
    let trusted = repo.updater.trusted();
    let missing = |role: &str| anyhow::anyhow!("no trusted {role} after update");
    let resolution = Resolution {
        gun: reference.gun.to_string(),
        tag: reference.tag.clone(),
        digest,
        size: info.target.length,
        media_type: info.target.media_type().map(str::to_string),
        signed_by: info.role.clone(),
        trust: repo.trust.clone(),
        root: RoleState::of(trusted.root()),
        timestamp: RoleState::of(trusted.timestamp().ok_or_else(|| missing("timestamp"))?),
        snapshot: RoleState::of(trusted.snapshot().ok_or_else(|| missing("snapshot"))?),
        targets: RoleState::of(trusted.targets().ok_or_else(|| missing("targets"))?),
    };
    Ok((resolution, repo))
}
