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

use crate::fetch::{FetchError, Fetcher, HttpFetcher, HttpOptions};
use crate::remote::{RemoteError, ServerClient};
use crate::updater::{encode_role, UpdaterConfig};
use std::collections::BTreeMap;
use tagtrust_shared::{Gun, Metadata, Snapshot, Timestamp, TopLevelRole};

/// Why a sync could not start, or why one GUN was refused.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("{file} from the upstream does not parse: {reason}")]
    Invalid { file: String, reason: String },
    #[error("the upstream's timestamp is version {upstream}, older than the {held} the mirror holds: the upstream rolled back (nothing copied)")]
    RolledBack { upstream: u64, held: u64 },
    #[error("the upstream's timestamp version {version} differs from the mirror's copy of that version: the upstream changed its past (nothing copied)")]
    Changed { version: u64 },
    #[error("the upstream's changefeed: {0}")]
    Changefeed(String),
}

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

/// Two servers: where metadata comes from and where it goes.
pub struct MirrorSync {
    upstream: String,
    fetcher: HttpFetcher,
    destination: ServerClient,
    destination_fetcher: HttpFetcher,
    limits: UpdaterConfig,
}

/// One file of a GUN's history as the upstream serves it.
struct FileCopy {
    name: String,
    bytes: Vec<u8>,
}

/// The newest versions the destination holds (0: none).
#[derive(Debug, Default)]
struct HeldVersions {
    root: u64,
    timestamp: Option<(u64, String)>,
    /// Version of each role in the destination's current snapshot, and the
    /// snapshot's own.
    roles: BTreeMap<String, u64>,
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
            upstream: upstream.trim_end_matches('/').to_string(),
            fetcher: HttpFetcher::new(upstream_http)?,
            destination: ServerClient::with_http(
                destination,
                destination_token,
                &destination_http,
            )?,
            destination_fetcher: HttpFetcher::new(destination_http)?,
            limits: UpdaterConfig::default(),
        })
    }

    fn upstream_file(&self, gun: &Gun, name: &str) -> String {
        format!("{}{name}", crate::remote::metadata_url(&self.upstream, gun))
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
        let timestamp_bytes = self.fetcher.fetch(
            &self.upstream_file(gun, "timestamp.json"),
            self.limits.timestamp_max_length,
        )?;
        let timestamp: Metadata<Timestamp> = parse("timestamp.json", &timestamp_bytes)?;
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
        let mut files = Vec::new();
        let mut fetch =
            |role: &str, version: u64, max_length: u64| -> Result<Option<Vec<u8>>, MirrorError> {
                let name = format!("{version}.{}.json", encode_role(role));
                match self
                    .fetcher
                    .fetch(&self.upstream_file(gun, &name), max_length)
                {
                    Ok(bytes) => {
                        copied(Copied {
                            gun,
                            file: &name,
                            bytes: bytes.len() as u64,
                        });
                        files.push(FileCopy {
                            name: format!("{version}.{role}.json"),
                            bytes: bytes.clone(),
                        });
                        Ok(Some(bytes))
                    }
                    // A past version the upstream no longer keeps.
                    Err(FetchError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            };
        // Roots after the destination's newest, until the upstream has no more.
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
        // Timestamps after the destination's, the newest fetched by version
        // (it may have been re-signed since the look above).
        let from = held.timestamp.as_ref().map_or(1, |(v, _)| v + 1);
        for past in from..=version {
            fetch(
                TopLevelRole::Timestamp.as_str(),
                past,
                self.limits.timestamp_max_length,
            )?;
        }
        // Snapshots after the destination's, up to the one the timestamp names.
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
        // Every role the snapshot lists, after the destination's version.
        if let Some(bytes) = snapshot {
            let snapshot: Metadata<Snapshot> = parse("snapshot", &bytes)?;
            for (file, meta) in &snapshot.signed.meta {
                let role = file.trim_end_matches(".json");
                let held_version = held.roles.get(role).copied().unwrap_or(0);
                let max_length = meta.length.unwrap_or(self.limits.targets_max_length);
                for past in held_version + 1..=meta.version {
                    fetch(role, past, max_length)?;
                }
            }
        }
        let bytes: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
        let count = files.len();
        let upload: Vec<(String, Vec<u8>)> = files.into_iter().map(|f| (f.name, f.bytes)).collect();
        self.destination.import_mirror(gun, &upload)?;
        Ok(GunOutcome::Copied {
            files: count,
            bytes,
            timestamp_version: version,
        })
    }

    /// What the destination holds of `gun` now (nothing if it has none).
    fn held_versions(&self, gun: &Gun) -> Result<HeldVersions, MirrorError> {
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
        if let Some(bytes) = fetch("root.json", self.limits.root_max_length)? {
            held.root = parse::<tagtrust_shared::Root>("the mirror's root.json", &bytes)?
                .signed
                .version;
        }
        if let Some(bytes) = fetch("timestamp.json", self.limits.timestamp_max_length)? {
            let md: Metadata<Timestamp> = parse("the mirror's timestamp.json", &bytes)?;
            held.timestamp = Some((
                md.signed.version,
                tagtrust_shared::hashes::sha256_hex(&bytes),
            ));
        }
        if let Some(bytes) = fetch("snapshot.json", self.limits.snapshot_max_length)? {
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
            Some(gun) => format!("{}/v2/{gun}/_trust/changefeed", self.upstream),
            None => format!("{}/v2/_trust/changefeed", self.upstream),
        };
        let url = format!("{base}?change_id={cursor}&records={records}");
        let bytes = self.fetcher.fetch(&url, 4 * 1024 * 1024)?;
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
