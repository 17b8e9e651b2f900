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
    check_max_age(&updater, options.max_age)?;
    Ok(Repository {
        gun: gun.clone(),
        updater,
        trust,
        new_root_keyids,
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
    if root_path.exists() {
        if let Some(file) = &options.root_file {
            // Trust, once established, only moves forward along the root
            // chain; a root file cannot reset it. Say so rather than
            // silently ignore the option.
            eprintln!(
                "notice: {gun} is already trusted here; --root {} is ignored (the stored root and its chain are used)",
                file.display()
            );
        }
        return Ok((TrustSource::Stored, Vec::new()));
    }
    let pin = home
        .config()?
        .pins
        .get(gun.as_str())
        .cloned()
        .unwrap_or_default();
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
        eprintln!(
            "notice: trusting {gun} on first use: root v{} with root keys {}",
            root.signed.version,
            crate::terminal::escape_join(&keyids, ", ")
        );
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

/// The root must be signed by a threshold of the pinned keys. A pin names a
/// key by the SHA-256 of its canonical form, so only keys whose content
/// hashes to a pinned ID count: the root chooses which IDs it lists under
/// which keys, and must not be able to list its own key under a pinned ID.
fn check_pinned_keys(root: &Metadata<Root>, pin: &TrustPin) -> Result<()> {
    let threshold = root.signed.role_keys("root")?.threshold;
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
        };
        let forged = root_signed_by(&attacker, &pinned.key_id());
        // It is self-consistent (signed by the key it lists)...
        forged.signed.verify_role("root", &forged).unwrap();
        // ...but not by the pinned key.
        assert!(check_pinned_keys(&forged, &pin).is_err());
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
    let info = repo
        .updater
        .get_targetinfo(&reference.tag)
        .with_context(|| format!("searching the signed targets of {}", reference.gun))?;
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
