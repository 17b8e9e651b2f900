//! The local state directory, `TAGTRUST_HOME` (default `~/.tagtrust`):
//!
//! ```text
//! config.toml                      servers, trust pins
//! tuf/<origin>/<gun>/*.json        trusted metadata per server origin and GUN (the rollback memory)
//! staged/<origin>/<gun>/           root versions being signed by several parties
//! keys/<gun>/<role>.<keyid>.pem    private keys, encrypted PKCS#8 PEM, mode 0600
//! ```

use crate::atomic_file::{write_private_file, FileError};
use crate::passphrase::PassphraseError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tagtrust_shared::{Error as TufError, Gun, PrivateKey};

/// Why `config.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] FileError),

    #[error("reading {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },

    #[error("freshness.max_age {text:?} in config.toml: {source}")]
    MaxAge {
        text: String,
        source: humantime::DurationError,
    },

    #[error("mirror.max_stale {text:?} in config.toml: {source}")]
    MirrorMaxStale {
        text: String,
        source: humantime::DurationError,
    },

    /// A trust pin asking for more (or fewer) pinned keys than can sign.
    #[error("root_threshold {threshold} is impossible with {pinned} distinct pinned root key(s)")]
    PinThreshold { threshold: u64, pinned: u64 },
}

/// Why a private key could not be stored, found or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    File(#[from] FileError),

    /// A key file that does not open (wrong passphrase, damaged file).
    #[error("key {path}: {source}")]
    Unreadable { path: PathBuf, source: TufError },

    /// A key file to import that does not open with the passphrase.
    #[error("the imported key: {0}")]
    Import(TufError),

    /// A key name, encryption or encoding problem.
    #[error(transparent)]
    Key(#[from] TufError),

    /// This home holds none of the role's keys.
    #[error("no private {role} key for {gun} in {dir} (the role's keys are {keyids})")]
    Missing {
        role: String,
        gun: String,
        dir: PathBuf,
        keyids: String,
    },

    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
}

/// Folder under `keys/` for keys not tied to one GUN.
const ROBOT_KEY_DIR: &str = "_named";

/// A private key file found in the home.
#[derive(Debug, Clone, Serialize)]
pub struct KeyFile {
    pub gun: Option<String>,
    /// The role (for GUN keys) or the name given to `key generate`.
    pub role: String,
    pub key_id: String,
    pub path: PathBuf,
}

/// Read a private key file (encrypted PKCS#8 PEM, ed25519 or P-256) with
/// `passphrase`.
pub fn load_key_file(path: &Path, passphrase: &str) -> Result<PrivateKey, KeyError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| FileError::new(format!("reading {}", path.display()), e))?;
    PrivateKey::from_encrypted_pem(&pem, passphrase).map_err(|source| KeyError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// What `config.toml` holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server used when neither `--server` nor `TAGTRUST_SERVER` is given.
    #[serde(default)]
    pub server: Option<String>,
    /// Trust pins per GUN: how trust in a GUN seen for the first time is established.
    #[serde(default)]
    pub pins: BTreeMap<String, TrustPin>,
    /// Lifetimes of the roles this publisher signs, and the warning window.
    #[serde(default)]
    pub expiry: ExpiryPolicy,
    /// Consumer freshness policy.
    #[serde(default)]
    pub freshness: Freshness,
    /// OCI registry client settings.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Where to read repositories from instead of (or before) their
    /// server: `[[mirror]]` tables, the first that matches wins.
    #[serde(default)]
    pub mirror: Vec<MirrorMapping>,
}

/// One `[[mirror]]` in config.toml: the repositories of an upstream server
/// (or the GUNs under a prefix) are read from these locations, in order.
/// The trusted state (the rollback memory) stays the upstream's, whichever
/// location answers, so switching locations can never roll a consumer back.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorMapping {
    /// The upstream server URL this mapping is for.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Or: the GUNs starting with this prefix, whatever their server.
    #[serde(default)]
    pub gun_prefix: Option<String>,
    /// Locations (tagtrust servers or static copies), tried in order.
    pub locations: Vec<String>,
    /// Accept a location's expired timestamp (or snapshot, targets) if it
    /// expired at most this long ago (e.g. "6h") and no location serves a
    /// fresh one. Off unless set.
    #[serde(default)]
    pub max_stale: Option<String>,
}

impl MirrorMapping {
    /// Does this mapping cover `gun` on `server`?
    pub fn covers(&self, server: &str, gun: &str) -> bool {
        let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        self.upstream.as_deref().is_some_and(|u| same(u, server))
            || self
                .gun_prefix
                .as_deref()
                .is_some_and(|p| gun.starts_with(p))
    }

    pub fn max_stale(&self) -> Result<Option<std::time::Duration>, ConfigError> {
        self.max_stale
            .as_deref()
            .map(|text| {
                humantime::parse_duration(text).map_err(|source| ConfigError::MirrorMaxStale {
                    text: text.to_string(),
                    source,
                })
            })
            .transpose()
    }
}

impl Config {
    /// The mapping that covers `gun` on `server`, if any.
    pub fn mirror_for(&self, server: &str, gun: &str) -> Option<&MirrorMapping> {
        self.mirror.iter().find(|m| m.covers(server, gun))
    }
}

/// `[registry]` in config.toml.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Hosts (optionally `host:port`) other than the registry's own origin
    /// that may receive the registry password in the token flow, e.g.
    /// `["auth.example.com"]`. Only over https.
    #[serde(default)]
    pub token_realms: Vec<String>,
}

/// Consumer freshness policy beyond TUF's expiry.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    /// Refuse a timestamp signed longer ago than this (e.g. "1h").
    #[serde(default)]
    pub max_age: Option<String>,
}

impl Freshness {
    pub fn max_age(&self) -> Result<Option<std::time::Duration>, ConfigError> {
        self.max_age
            .as_deref()
            .map(|text| {
                humantime::parse_duration(text).map_err(|source| ConfigError::MaxAge {
                    text: text.to_string(),
                    source,
                })
            })
            .transpose()
    }
}

/// How long signed roles live, and when an expiry is near enough to act on:
/// any publish re-signs a locally held role expiring within `warning_days`,
/// and `status` warns about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpiryPolicy {
    pub root_days: i64,
    pub targets_days: i64,
    /// Hashed bins (`tagtrust bins enable`): long-lived, so that a tag
    /// change re-signs only its bin, and only timestamp and snapshot churn.
    pub bins_days: i64,
    pub warning_days: i64,
}

impl Default for ExpiryPolicy {
    /// The trust model's defaults (README, "Configuration"): root 1 year,
    /// targets 90 days, bins 1 year; warn 30 days ahead.
    fn default() -> Self {
        ExpiryPolicy {
            root_days: 365,
            targets_days: 90,
            bins_days: 365,
            warning_days: 30,
        }
    }
}

/// How to trust a GUN's first root instead of trust on first use.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPin {
    /// A root.json file to start from.
    #[serde(default)]
    pub root_file: Option<PathBuf>,
    /// Key IDs of root keys: the first root fetched must be signed by
    /// `root_threshold` of these.
    #[serde(default)]
    pub root_keys: Vec<String>,
    /// How many of `root_keys` must sign the first root (default: all of
    /// them). The pin's own number: the root being checked does not get to
    /// say how many of the pinned keys are enough.
    #[serde(default)]
    pub root_threshold: Option<u64>,
}

impl TrustPin {
    /// Is anything pinned?
    pub fn is_set(&self) -> bool {
        self.root_file.is_some() || !self.root_keys.is_empty()
    }

    /// The number of pinned keys that must sign: `root_threshold`, else
    /// all of them. Refused when impossible (0, or more than are pinned).
    pub fn threshold(&self) -> Result<u64, ConfigError> {
        let pinned = self
            .root_keys
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        let threshold = self.root_threshold.unwrap_or(pinned);
        if threshold < 1 || threshold > pinned {
            return Err(ConfigError::PinThreshold { threshold, pinned });
        }
        Ok(threshold)
    }
}

/// The home directory and what lives in it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The config, or the default if there is no config file.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let path = self.root.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path,
                source: Box::new(source),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(FileError::new(format!("reading {}", path.display()), e).into()),
        }
    }

    /// Directory of the trusted metadata of `gun` as served by `server`.
    pub fn metadata_dir(&self, server: &str, gun: &Gun) -> PathBuf {
        self.origin_dir("tuf", server).join(gun_dir_name(gun))
    }

    /// Directory of the staged (not yet published) metadata of `gun`.
    pub fn staging_dir(&self, server: &str, gun: &Gun) -> PathBuf {
        self.origin_dir("staged", server).join(gun_dir_name(gun))
    }

    /// `<area>/<origin>`, moving a directory of the old layout (one name
    /// per host and port, scheme dropped) to its new name the first time,
    /// where the old name can only have meant this origin: an http(s) URL
    /// without a path whose host has no `_`. If the move fails the old
    /// directory keeps being used, so trust is never silently reset.
    fn origin_dir(&self, area: &str, server: &str) -> PathBuf {
        let area = self.root.join(area);
        let dir = area.join(server_dir_name(server));
        if dir.exists() {
            return dir;
        }
        if let Some(legacy) = legacy_server_dir_name(server).map(|name| area.join(name)) {
            if legacy.is_dir() && std::fs::rename(&legacy, &dir).is_err() {
                return legacy;
            }
        }
        dir
    }

    fn key_dir(&self, gun: &Gun) -> PathBuf {
        self.root.join("keys").join(gun_dir_name(gun))
    }

    /// Encrypt `key` with `passphrase` and store it as `gun`'s `role` key.
    pub fn save_key(
        &self,
        gun: &Gun,
        role: &str,
        key: &PrivateKey,
        passphrase: &str,
    ) -> Result<PathBuf, KeyError> {
        tagtrust_shared::pathmatch::validate_role_name(role)?;
        let dir = self.key_dir(gun);
        let path = dir.join(format!("{role}.{}.pem", key.key_id()));
        let pem = key.to_encrypted_pem(passphrase)?;
        write_private_file(&path, pem.as_bytes())?;
        Ok(path)
    }

    /// Every private key file under `keys/`, with the GUN and role its
    /// path names (robot keys made by `key generate` have no GUN).
    pub fn list_keys(&self) -> Result<Vec<KeyFile>, KeyError> {
        let dir = self.root.join("keys");
        let mut found = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(FileError::new(format!("reading {}", d.display()), e).into()),
            };
            for entry in entries {
                let path = entry
                    .map_err(|e| FileError::new(format!("reading {}", d.display()), e))?
                    .path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Some(stem) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".pem"))
                else {
                    continue;
                };
                let Some((role, key_id)) = stem.rsplit_once('.') else {
                    continue;
                };
                let parent = path.parent().unwrap_or(&dir);
                let gun = parent
                    .strip_prefix(&dir)
                    .ok()
                    .map(|p| p.to_string_lossy().replace("%2F", "/"))
                    .filter(|g| !g.is_empty() && g != ROBOT_KEY_DIR);
                found.push(KeyFile {
                    gun,
                    role: role.to_string(),
                    key_id: key_id.to_string(),
                    path,
                });
            }
        }
        found.sort_by(|a, b| (&a.gun, &a.role, &a.key_id).cmp(&(&b.gun, &b.role, &b.key_id)));
        Ok(found)
    }

    /// Store a key made by `key generate NAME` (for a robot or a delegated
    /// signer), not tied to a GUN.
    pub fn save_named_key(
        &self,
        name: &str,
        key: &PrivateKey,
        passphrase: &str,
    ) -> Result<PathBuf, KeyError> {
        tagtrust_shared::pathmatch::validate_role_name(name)?;
        let path = self
            .root
            .join("keys")
            .join(ROBOT_KEY_DIR)
            .join(format!("{name}.{}.pem", key.key_id()));
        write_private_file(&path, key.to_encrypted_pem(passphrase)?.as_bytes())?;
        Ok(path)
    }

    /// Store an encrypted key file as it is (never re-encrypted or written
    /// in the clear) after checking `passphrase` opens it: as `gun`'s `role`
    /// key, or under `role` as a name when `gun` is `None`.
    pub fn import_key(
        &self,
        pem: &str,
        passphrase: &str,
        gun: Option<&Gun>,
        role: &str,
    ) -> Result<(String, PathBuf), KeyError> {
        let key = PrivateKey::from_encrypted_pem(pem, passphrase).map_err(KeyError::Import)?;
        tagtrust_shared::pathmatch::validate_role_name(role)?;
        let dir = match gun {
            Some(gun) => self.key_dir(gun),
            None => self.root.join("keys").join(ROBOT_KEY_DIR),
        };
        let path = dir.join(format!("{role}.{}.pem", key.key_id()));
        write_private_file(&path, pem.as_bytes())?;
        Ok((key.key_id(), path))
    }

    /// The file of `gun`'s private key for `role` whose key ID is one of
    /// `keyids`, if this home holds one.
    pub fn key_file(&self, gun: &Gun, role: &str, keyids: &[String]) -> Option<PathBuf> {
        keyids
            .iter()
            .map(|id| self.key_dir(gun).join(format!("{role}.{id}.pem")))
            .find(|path| path.exists())
    }

    /// Does this home hold a private key of `gun`'s `role` among `keyids`?
    pub fn has_key(&self, gun: &Gun, role: &str, keyids: &[String]) -> bool {
        self.key_file(gun, role, keyids).is_some()
    }

    /// Load `gun`'s private key for `role` whose key ID is one of `keyids`.
    pub fn load_key(
        &self,
        gun: &Gun,
        role: &str,
        keyids: &[String],
        passphrase: &str,
    ) -> Result<PrivateKey, KeyError> {
        if let Some(path) = self.key_file(gun, role, keyids) {
            return load_key_file(&path, passphrase);
        }
        Err(KeyError::Missing {
            role: role.to_string(),
            gun: gun.to_string(),
            dir: self.key_dir(gun),
            keyids: keyids.join(", "),
        })
    }
}

/// What [`server_dir_name`] leaves alone in each component: letters,
/// digits, `.` and `-`. Everything else (`_`, `%`, `/`, `:` …) is
/// percent-encoded, so `_` only ever separates components.
const ORIGIN_COMPONENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'.').remove(b'-');

fn origin_component(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, ORIGIN_COMPONENT).to_string()
}

/// One directory name per normalised server origin: `scheme_host_port`
/// and, if the URL has a path other than `/`, `_path`, each component
/// percent-encoded (only letters, digits, `.` and `-` stay as they are).
/// Scheme and host are lower-cased, a default port is written out
/// (`http://h` and `http://h:80` are one origin) and a trailing `/` of the
/// path is dropped. Because `_` inside a component is encoded, the mapping
/// is injective: `http://127.0.0.1:18601` -> `http_127.0.0.1_18601`,
/// `https://127.0.0.1:18601/` -> `https_127.0.0.1_18601`,
/// `http://127.0.0.1/18601` -> `http_127.0.0.1_80_%2F18601`,
/// `http://127.0.0.1_18601` -> `http_127.0.0.1%5F18601_80`. A server that is
/// not an http(s) URL maps to `_` and the whole text encoded (no origin
/// name starts with `_`).
pub fn server_dir_name(server: &str) -> String {
    let parsed = reqwest::Url::parse(server.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    let Some(url) = parsed else {
        return format!("_{}", origin_component(server));
    };
    let mut name = format!(
        "{}_{}_{}",
        origin_component(url.scheme()),
        origin_component(&url.host_str().unwrap_or_default().to_ascii_lowercase()),
        url.port_or_known_default().unwrap_or_default()
    );
    let path = url.path().trim_end_matches('/');
    if !path.is_empty() {
        name.push('_');
        name.push_str(&origin_component(path));
    }
    for (label, part) in [("?", url.query()), ("#", url.fragment())] {
        if let Some(part) = part {
            name.push('_');
            name.push_str(&origin_component(&format!("{label}{part}")));
        }
    }
    name
}

/// The directory name the old layout gave `server`, where it is
/// unambiguous: an http(s) origin with no path, query or user info whose
/// host has no `_` (`http://127.0.0.1:4443` -> `127.0.0.1_4443`).
fn legacy_server_dir_name(server: &str) -> Option<String> {
    let url = reqwest::Url::parse(server.trim()).ok()?;
    let host = url.host_str()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.path().trim_end_matches('/').is_empty()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !host.contains('_')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !plain {
        return None;
    }
    // The old name: the text after the scheme, anything but letters,
    // digits, '.' and '-' replaced by '_'.
    let typed = server.trim().split_once("://")?.1.trim_end_matches('/');
    let name: String = typed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (!name.chars().all(|c| c == '.')).then_some(name)
}

/// One path component for a GUN: `/` becomes `%2F` (a GUN never contains
/// `%`), so no GUN's directory can sit inside another's, where it could
/// collide with that GUN's files (GUN `acme/timestamp.json` beside GUN
/// `acme`'s `timestamp.json`).
pub fn gun_dir_name(gun: &Gun) -> String {
    gun.as_str().replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_mappings_match_by_upstream_or_gun_prefix_first_one_wins() {
        let config: Config = toml::from_str(
            r#"
            [[mirror]]
            upstream = "https://trust.example.com/"
            locations = ["https://a.internal"]
            max_stale = "6h"

            [[mirror]]
            gun_prefix = "registry.example.com/acme/"
            locations = ["https://b.internal", "https://c.internal"]
            "#,
        )
        .unwrap();
        let a = config
            .mirror_for("https://trust.example.com", "other/app")
            .unwrap();
        assert_eq!(a.locations, ["https://a.internal"]);
        assert_eq!(
            a.max_stale().unwrap(),
            Some(std::time::Duration::from_secs(6 * 3600))
        );
        let b = config
            .mirror_for("https://elsewhere", "registry.example.com/acme/app")
            .unwrap();
        assert_eq!(b.locations.len(), 2);
        assert_eq!(b.max_stale().unwrap(), None);
        // The first mapping that covers wins.
        let first = config
            .mirror_for("https://trust.example.com", "registry.example.com/acme/app")
            .unwrap();
        assert_eq!(first.locations, ["https://a.internal"]);
        assert!(config
            .mirror_for("https://elsewhere", "registry.example.com/other")
            .is_none());
        let bad: Config =
            toml::from_str("[[mirror]]\nupstream = \"x\"\nlocations = []\nmax_stale = \"soon\"\n")
                .unwrap();
        assert!(bad.mirror[0].max_stale().is_err());
    }

    #[test]
    fn server_names_are_path_safe() {
        assert_eq!(
            server_dir_name("http://127.0.0.1:4443/"),
            "http_127.0.0.1_4443"
        );
        assert_eq!(
            server_dir_name("https://a.example/x"),
            "https_a.example_443_%2Fx"
        );
        assert!(!server_dir_name("http://h/../../etc").contains('/'));
        assert!(!server_dir_name("http://h/%2e%2e/x").contains('/'));
        for name in ["..", ".", "", "a/b", "http://"] {
            let dir = server_dir_name(name);
            assert!(dir.starts_with('_') && !dir.contains('/'), "{name}: {dir}");
        }
    }

    /// Origins differing in scheme, port, path or a `_` in the host get
    /// different directories; spellings of one origin get one.
    #[test]
    fn server_dirs_are_one_per_normalised_origin() {
        let distinct = [
            "http://127.0.0.1:18601",
            "http://127.0.0.1/18601",
            "http://127.0.0.1_18601",
            "https://127.0.0.1:18601/",
            "http://127.0.0.1:18601/a_b",
            "http://127.0.0.1:18601/a/b",
            "http://127.0.0.1:18601/a%2Fb",
            "http://127.0.0.1",
            "https://127.0.0.1",
            "http://[::1]:18601",
        ];
        let names: std::collections::BTreeSet<String> =
            distinct.iter().map(|s| server_dir_name(s)).collect();
        assert_eq!(names.len(), distinct.len(), "{names:?}");
        for name in &names {
            assert!(!name.contains('/') && name != "." && name != "..", "{name}");
        }
        for same in [
            ["http://127.0.0.1:18601", "http://127.0.0.1:18601/"],
            ["http://127.0.0.1", "http://127.0.0.1:80/"],
            ["HTTPS://Example.COM", "https://example.com:443"],
        ] {
            assert_eq!(
                server_dir_name(same[0]),
                server_dir_name(same[1]),
                "{same:?}"
            );
        }
        assert_eq!(
            server_dir_name("http://127.0.0.1:18601"),
            "http_127.0.0.1_18601"
        );
        assert_eq!(
            server_dir_name("http://127.0.0.1/18601"),
            "http_127.0.0.1_80_%2F18601"
        );
    }

    /// A home of the old layout keeps its trust: the plain origin's old
    /// directory is moved to the new name; ambiguous old names are left.
    #[test]
    fn old_server_dirs_are_moved_for_plain_origins() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let gun = Gun::parse("acme/app").unwrap();
        let old = dir
            .path()
            .join("tuf/127.0.0.1_4443")
            .join(gun_dir_name(&gun));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("root.json"), b"{}").unwrap();
        // A different origin whose old name was the same is not given it.
        let other = home.metadata_dir("http://127.0.0.1_4443", &gun);
        assert!(!other.join("root.json").exists());
        let moved = home.metadata_dir("http://127.0.0.1:4443", &gun);
        assert_eq!(
            moved,
            dir.path()
                .join("tuf/http_127.0.0.1_4443")
                .join(gun_dir_name(&gun))
        );
        assert_eq!(std::fs::read(moved.join("root.json")).unwrap(), b"{}");
        assert!(!old.exists());
    }

    #[test]
    fn pin_thresholds_default_to_all_pinned_keys() {
        let pin = |keys: &[&str], threshold: Option<u64>| TrustPin {
            root_file: None,
            root_keys: keys.iter().map(|k| k.to_string()).collect(),
            root_threshold: threshold,
        };
        assert_eq!(pin(&["a", "b"], None).threshold().unwrap(), 2);
        assert_eq!(pin(&["a", "b"], Some(1)).threshold().unwrap(), 1);
        assert!(pin(&["a", "b"], Some(3)).threshold().is_err());
        assert!(pin(&["a", "b"], Some(0)).threshold().is_err());
        assert!(pin(&["a", "a"], Some(2)).threshold().is_err());
    }

    #[test]
    fn keys_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let gun = Gun::parse("acme/app").unwrap();
        let key = PrivateKey::from(tagtrust_shared::SigningKey::generate());
        let path = home.save_key(&gun, "targets", &key, "pw").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let loaded = home
            .load_key(&gun, "targets", &[key.key_id()], "pw")
            .unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
        let err = home
            .load_key(&gun, "targets", &[key.key_id()], "bad")
            .unwrap_err();
        assert!(format!("{err:#}").contains("wrong passphrase"), "{err:#}");
        // A P-256 key (a delegate's Notary key) round-trips the same way
        // and signs as the key it was.
        let robot = PrivateKey::from(tagtrust_shared::P256SigningKey::generate());
        let robot_file = home.save_named_key("ci-robot", &robot, "pw").unwrap();
        let opened = load_key_file(&robot_file, "pw").unwrap();
        assert!(matches!(opened, PrivateKey::P256(_)));
        let sig = tagtrust_shared::keys::TufSigner::sign_tuf(&opened, b"signed");
        assert_eq!(sig.keyid, robot.key_id());
        assert!(robot.public_key().verify(b"signed", &sig.sig).unwrap());
        assert!(load_key_file(&robot_file, "bad").is_err());
        let listed = home.list_keys().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].gun, None);
        assert_eq!(listed[0].role, "ci-robot");
        assert_eq!(listed[1].gun.as_deref(), Some("acme/app"));
        assert!(listed[1].path.parent().unwrap().ends_with("acme%2Fapp"));
        assert_eq!(listed[1].key_id, key.key_id());
    }
}
