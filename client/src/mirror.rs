//! Transparent mirrors: copy every stored version of a GUN's signed
//! metadata from an upstream tagtrust server to a destination server, byte
//! for byte, re-signing nothing (`tagtrust mirror sync`).
//!
//! This side only fetches (within the updater's size limits, so an endless
//! or slow upstream is cut off) and decides what the destination lacks: the
//! root versions after the destination's newest, then every version of every
//! other role after the destination's current one, up to what the upstream's
//! newest timestamp describes. The destination verifies the whole copy with
//! the same trust state machine a consumer uses before storing any of it
//! (`POST /v2/{gun}/_trust/mirror`), so a hostile upstream is refused there
//! even if this side were fooled. A GUN that fails is reported with its
//! reason and the others go on.
//!
//! Reading a GUN's history from a server is [`Upstream`]; the air-gapped
//! export ([`crate::export`]) reads it the same way, holding nothing.

use crate::cause::{holds_cause, Cause};
use crate::fetch::{FetchError, Fetcher, HttpFetcher, HttpOptions};
use crate::remote::ServerClient;
use crate::updater::{encode_role, UpdaterConfig};
use std::collections::BTreeMap;
use tagtrust_shared::{Gun, Metadata, Snapshot, Timestamp, TopLevelRole};

/// Why a sync could not start, or why one GUN was refused.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{file} from the upstream does not parse: {reason}")]
    Invalid { file: String, reason: String },
    #[error("the upstream's timestamp is version {upstream}, older than the {held} the mirror holds: the upstream rolled back (nothing copied)")]
    RolledBack { upstream: u64, held: u64 },
    #[error("the upstream's timestamp version {version} differs from the mirror's copy of that version: the upstream changed its past (nothing copied)")]
    Changed { version: u64 },
    #[error("the upstream's changefeed: {0}")]
    Changefeed(String),
    /// Reading the upstream ([`Cause::Fetch`]) or writing to the
    /// destination ([`Cause::Remote`]) failed.
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(MirrorError);

/// What happened to one GUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GunOutcome {
    /// New versions copied; the destination verified and stored them.
    Copied {
        files: usize,
        bytes: u64,
        timestamp_version: u64,
    },
    /// The destination already holds the upstream's newest timestamp.
    UpToDate { timestamp_version: u64 },
    /// Refused (by this side or the destination); the destination keeps
    /// what it had.
    Refused { reason: String },
}

/// The result for one GUN.
#[derive(Debug, Clone)]
pub struct GunSync {
    pub gun: Gun,
    pub outcome: GunOutcome,
}

/// A file copied, for progress reporting.
#[derive(Debug, Clone)]
pub struct Copied<'a> {
    pub gun: &'a Gun,
    pub file: &'a str,
    pub bytes: u64,
}

/// A tagtrust server read as the source of GUNs' histories, within the
/// updater's size limits.
pub struct Upstream {
    url: String,
    fetcher: HttpFetcher,
    limits: UpdaterConfig,
}

/// Two servers: where metadata comes from and where it goes.
pub struct MirrorSync {
    upstream: Upstream,
    destination: ServerClient,
    destination_fetcher: HttpFetcher,
}

/// One version of one role as the upstream serves it.
pub(crate) struct FileCopy {
    pub role: String,
    pub version: u64,
    pub bytes: Vec<u8>,
}

impl FileCopy {
    /// `{version}.{role}.json`, the name the server stores it under.
    pub fn name(&self) -> String {
        format!("{}.{}.json", self.version, self.role)
    }
}

/// The newest versions a reader already holds (0: none); the default holds
/// nothing, so every version is fetched.
#[derive(Debug, Default)]
pub(crate) struct HeldVersions {
    root: u64,
    timestamp: Option<(u64, String)>,
    /// Version of each role in the reader's current snapshot, and the
    /// snapshot's own.
    roles: BTreeMap<String, u64>,
}

impl Upstream {
    /// `url` read with `http` (a pull token where reads need one).
    pub fn new(url: &str, http: HttpOptions) -> Result<Upstream, MirrorError> {
        Ok(Upstream {
            url: url.trim_end_matches('/').to_string(),
            fetcher: HttpFetcher::new(http)?,
            limits: UpdaterConfig::default(),
        })
    }

    /// The server's URL (no trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn file_url(&self, gun: &Gun, name: &str) -> String {
        format!("{}{name}", crate::remote::metadata_url(&self.url, gun))
    }

    /// The current `timestamp.json` of `gun`: its bytes and parsed form.
    pub(crate) fn timestamp(
        &self,
        gun: &Gun,
    ) -> Result<(Vec<u8>, Metadata<Timestamp>), MirrorError> {
        let bytes = self.fetcher.fetch(
            &self.file_url(gun, "timestamp.json"),
            self.limits.timestamp_max_length,
        )?;
        let timestamp = parse("timestamp.json", &bytes)?;
        Ok((bytes, timestamp))
    }

    /// Every stored version of every role of `gun` after what `held` has, up
    /// to what `timestamp` describes: roots until the server has no more,
    /// timestamps up to `timestamp`'s version, snapshots up to the one it
    /// names, and every role that snapshot lists. A past version the server
    /// no longer keeps is skipped. `copied` hears of each file fetched.
    pub(crate) fn versions_after(
        &self,
        gun: &Gun,
        timestamp: &Metadata<Timestamp>,
        held: &HeldVersions,
        copied: &mut dyn FnMut(Copied<'_>),
    ) -> Result<Vec<FileCopy>, MirrorError> {
        let mut files = Vec::new();
        let mut fetch =
            |role: &str, version: u64, max_length: u64| -> Result<Option<Vec<u8>>, MirrorError> {
                let name = format!("{version}.{}.json", encode_role(role));
                match self.fetcher.fetch(&self.file_url(gun, &name), max_length) {
                    Ok(bytes) => {
                        copied(Copied {
                            gun,
                            file: &name,
                            bytes: bytes.len() as u64,
                        });
                        files.push(FileCopy {
                            role: role.to_string(),
                            version,
                            bytes: bytes.clone(),
                        });
                        Ok(Some(bytes))
                    }
                    // A past version the upstream no longer keeps.
                    Err(FetchError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            };
        // Roots after the held one, until the upstream has no more.
        let mut root = held.root + 1;
        while fetch(
            TopLevelRole::Root.as_str(),
            root,
            self.limits.root_max_length,
        )?
        .is_some()
        {
            root += 1;
        }
        // Timestamps after the held one, the newest fetched by version
        // (it may have been re-signed since `timestamp` was read).
        let version = timestamp.signed.version;
        let from = held.timestamp.as_ref().map_or(1, |(v, _)| v + 1);
        for past in from..=version {
            fetch(
                TopLevelRole::Timestamp.as_str(),
                past,
                self.limits.timestamp_max_length,
            )?;
        }
        // Snapshots after the held one, up to the one the timestamp names.
        let snapshot_version = timestamp
            .signed
            .snapshot_meta()
            .map_err(|e| MirrorError::Invalid {
                file: "timestamp.json".into(),
                reason: e.to_string(),
            })?
            .version;
        let held_snapshot = held
            .roles
            .get(TopLevelRole::Snapshot.as_str())
            .copied()
            .unwrap_or(0);
        let mut snapshot = None;
        for past in held_snapshot + 1..=snapshot_version {
            let bytes = fetch(
                TopLevelRole::Snapshot.as_str(),
                past,
                self.limits.snapshot_max_length,
            )?;
            if past == snapshot_version {
                snapshot = bytes;
            }
        }
        // Every role the snapshot lists, after the held version. Its names
        // come from the upstream: only valid role names (no `/`, no leading
        // `.`) become file names.
        if let Some(bytes) = snapshot {
            let snapshot: Metadata<Snapshot> = parse("snapshot", &bytes)?;
            for (file, meta) in &snapshot.signed.meta {
                let role = file.trim_end_matches(".json");
                tagtrust_shared::pathmatch::validate_role_name(role).map_err(|e| {
                    MirrorError::Invalid {
                        file: format!("{snapshot_version}.snapshot.json"),
                        reason: e.to_string(),
                    }
                })?;
                let held_version = held.roles.get(role).copied().unwrap_or(0);
                // The snapshot's length is that of the version it names;
                // an earlier version may well be longer (a tag removed
                // since, say).
                for past in held_version + 1..=meta.version {
                    let max_length = match meta.length {
                        Some(length) if past == meta.version => length,
                        _ => self.limits.targets_max_length,
                    };
                    fetch(role, past, max_length)?;
                }
            }
        }
        Ok(files)
    }
}

impl MirrorSync {
    /// `upstream` is read with `upstream_http` (a pull token where reads
    /// need one); `destination` is written with `destination_token` (an
    /// `admin:` token for the GUNs) through `destination_http`.
    pub fn new(
        upstream: &str,
        upstream_http: HttpOptions,
        destination: &str,
        destination_token: Option<String>,
        destination_http: HttpOptions,
    ) -> Result<MirrorSync, MirrorError> {
        Ok(MirrorSync {
            upstream: Upstream::new(upstream, upstream_http)?,
            destination: ServerClient::with_http(
                destination,
                destination_token.clone(),
                &destination_http,
            )?,
            // Reading what the destination holds needs its token too where
            // its reads require `pull:`.
            destination_fetcher: HttpFetcher::new(match &destination_token {
                Some(token) => destination_http.with_bearer_token(token),
                None => destination_http,
            })?,
        })
    }

    /// Copy what the destination lacks of `gun`; `copied` hears of each
    /// file fetched. Never fails as a whole: a refusal is the outcome.
    pub fn sync_gun(&self, gun: &Gun, copied: &mut dyn FnMut(Copied<'_>)) -> GunSync {
        let outcome = match self.try_sync_gun(gun, copied) {
            Ok(outcome) => outcome,
            Err(e) => GunOutcome::Refused {
                reason: crate::error_line::error_line(&e),
            },
        };
        GunSync {
            gun: gun.clone(),
            outcome,
        }
    }

    fn try_sync_gun(
        &self,
        gun: &Gun,
        copied: &mut dyn FnMut(Copied<'_>),
    ) -> Result<GunOutcome, MirrorError> {
        let held = self.held_versions(gun)?;
        let (timestamp_bytes, timestamp) = self.upstream.timestamp(gun)?;
        let version = timestamp.signed.version;
        if let Some((held_version, held_sha256)) = &held.timestamp {
            if version < *held_version {
                return Err(MirrorError::RolledBack {
                    upstream: version,
                    held: *held_version,
                });
            }
            if version == *held_version {
                if tagtrust_shared::hashes::sha256_hex(&timestamp_bytes) != *held_sha256 {
                    return Err(MirrorError::Changed { version });
                }
                return Ok(GunOutcome::UpToDate {
                    timestamp_version: version,
                });
            }
        }
        let files = self
            .upstream
            .versions_after(gun, &timestamp, &held, copied)?;
        let bytes: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
        let count = files.len();
        let upload: Vec<(String, Vec<u8>)> =
            files.into_iter().map(|f| (f.name(), f.bytes)).collect();
        self.destination.import_mirror(gun, &upload)?;
        Ok(GunOutcome::Copied {
            files: count,
            bytes,
            timestamp_version: version,
        })
    }

    /// What the destination holds of `gun` now (nothing if it has none).
    fn held_versions(&self, gun: &Gun) -> Result<HeldVersions, MirrorError> {
        let limits = &self.upstream.limits;
        let url = |name: &str| format!("{}{name}", self.destination.metadata_url(gun));
        let fetch = |name: &str, max_length: u64| match self
            .destination_fetcher
            .fetch(&url(name), max_length)
        {
            Ok(bytes) => Ok(Some(bytes)),
            Err(FetchError::NotFound { .. }) => Ok(None),
            Err(e) => Err(MirrorError::from(e)),
        };
        let mut held = HeldVersions::default();
        if let Some(bytes) = fetch("root.json", limits.root_max_length)? {
            held.root = parse::<tagtrust_shared::Root>("the mirror's root.json", &bytes)?
                .signed
                .version;
        }
        if let Some(bytes) = fetch("timestamp.json", limits.timestamp_max_length)? {
            let md: Metadata<Timestamp> = parse("the mirror's timestamp.json", &bytes)?;
            held.timestamp = Some((
                md.signed.version,
                tagtrust_shared::hashes::sha256_hex(&bytes),
            ));
        }
        if let Some(bytes) = fetch("snapshot.json", limits.snapshot_max_length)? {
            let md: Metadata<Snapshot> = parse("the mirror's snapshot.json", &bytes)?;
            held.roles
                .insert(TopLevelRole::Snapshot.to_string(), md.signed.version);
            for (file, meta) in md.signed.meta {
                held.roles
                    .insert(file.trim_end_matches(".json").to_string(), meta.version);
            }
        }
        Ok(held)
    }

    /// Every GUN the upstream's global changefeed names whose last record
    /// is not a deletion (needs a token that may pull them).
    pub fn upstream_guns(&self) -> Result<Vec<Gun>, MirrorError> {
        let mut latest: BTreeMap<String, String> = BTreeMap::new();
        let mut cursor = 0i64;
        loop {
            let page = self.changefeed_page(None, cursor, 1000)?;
            let Some(last) = page.last() else { break };
            cursor = last.id;
            for record in page {
                latest.insert(record.gun, record.category);
            }
        }
        latest
            .into_iter()
            .filter(|(_, category)| category != "deletion")
            .map(|(gun, _)| {
                Gun::parse(&gun).map_err(|e| MirrorError::Changefeed(format!("GUN {gun:?}: {e}")))
            })
            .collect()
    }

    /// One page of the upstream's changefeed (global, or of one GUN) after
    /// `cursor`.
    pub fn changefeed_page(
        &self,
        gun: Option<&Gun>,
        cursor: i64,
        records: u32,
    ) -> Result<Vec<ChangeRecord>, MirrorError> {
        let base = match gun {
            Some(gun) => format!("{}/v2/{gun}/_trust/changefeed", self.upstream.url),
            None => format!("{}/v2/_trust/changefeed", self.upstream.url),
        };
        let url = format!("{base}?change_id={cursor}&records={records}");
        let bytes = self.upstream.fetcher.fetch(&url, 4 * 1024 * 1024)?;
        let page: ChangefeedPage = serde_json::from_slice(&bytes)
            .map_err(|e| MirrorError::Changefeed(format!("{url}: {e}")))?;
        page.records
            .into_iter()
            .map(|r| {
                let id = r.id.parse::<i64>().map_err(|_| {
                    MirrorError::Changefeed(format!("record ID {:?} is not an integer", r.id))
                })?;
                Ok(ChangeRecord {
                    id,
                    gun: r.gun,
                    version: r.version,
                    category: r.category,
                })
            })
            .collect()
    }
}

/// One changefeed record as a follower uses it.
#[derive(Debug, Clone)]
pub struct ChangeRecord {
    pub id: i64,
    pub gun: String,
    pub version: u64,
    pub category: String,
}

#[derive(serde::Deserialize)]
struct ChangefeedPage {
    records: Vec<ChangefeedRecord>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangefeedRecord {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "GUN")]
    gun: String,
    version: u64,
    category: String,
}

fn parse<T: tagtrust_shared::metadata::Role>(
    file: &str,
    bytes: &[u8],
) -> Result<Metadata<T>, MirrorError> {
    Metadata::<T>::from_bytes(bytes).map_err(|e| MirrorError::Invalid {
        file: file.to_string(),
        reason: e.to_string(),
    })
}
