//! `tagtrust-server import-notary --from URL [GUN…|--all]`: copy Notary
//! repositories from a running notary-server into this server's database,
//! byte for byte, so that trust directories pointed here afterwards keep
//! working without re-trust.
//!
//! For each GUN: fetch `timestamp.json`, the snapshot it names and the root,
//! targets and delegations the snapshot names (by checksum, as Notary
//! clients do), then every older version of each role (`{version}.{role}.json`,
//! walking down from the current one until the source answers 404:
//! notary-server keeps every version it stored, and the CLI's first publish
//! uploads targets and snapshot as version 2, so their version 1 never
//! exists). What was fetched is verified by the pure core
//! ([`crate::publish::notary::plan_import`]) and stored in one transaction
//! as a Notary repository that awaits its timestamp key rotation (the old
//! timestamp key stays in the old notary-signer; see the migration
//! `awaiting_rotation`). A GUN already held here is refused, never
//! overwritten. A refused GUN stores nothing and is reported on one line;
//! the others go on; any refusal makes the command fail.
//!
//! `--all` reads the source's global changefeed (Notary's JSON shape, paged
//! by the last `ID` seen) for every GUN not deleted since.

use crate::configuration::Settings;
use crate::dialect::Dialect;
use crate::publish::notary::{plan_import, NotaryImport};
use crate::storage::Storage;
use anyhow::{bail, Context};
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use tagtrust_shared::notary::{NotarySigned, NotarySnapshot, NotaryTimestamp};
use tagtrust_shared::terminal::escape;
use tagtrust_shared::Gun;

/// The largest timestamp read (what Notary clients accept).
const TIMESTAMP_MAX_BYTES: u64 = 1024 * 1024;
/// Changefeed records asked for per page, and the largest page read.
const FEED_PAGE: usize = 100;
const FEED_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Versions of one role walked at most: a source serving more is refused
/// rather than followed for ever.
const MAX_VERSIONS: u64 = 100_000;

/// What to import and from where. Not `Debug`: it carries a credential.
#[derive(Clone)]
pub struct ImportNotary {
    /// The notary-server's base URL (`https://notary.example.com:4443`).
    pub from: String,
    pub guns: Vec<String>,
    pub all: bool,
    /// Sent as the `Authorization` header of every request to the source.
    pub authorization: Option<String>,
}

/// An error and its causes, joined by `: ` (reqwest's own message leaves
/// out why a connection failed).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The source notary-server.
struct Source {
    client: reqwest::Client,
    base: String,
    authorization: Option<String>,
}

impl Source {
    /// GET `path` (from the server's root), at most `max` bytes; `None`
    /// on 404.
    async fn get(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.get(&url);
        if let Some(auth) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", causes(&e)))?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => return Ok(None),
            status if !status.is_success() => {
                return Err(format!("GET {url}: the source answered {status}"))
            }
            _ => {}
        }
        let too_large = || format!("GET {url}: more than {max} bytes");
        if response.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", causes(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > max {
                return Err(too_large());
            }
        }
        Ok(Some(body))
    }

    fn tuf_path(gun: &Gun, file: &str) -> String {
        format!("/v2/{gun}/_trust/tuf/{file}")
    }

    /// Every GUN the global changefeed names and has not deleted since.
    async fn all_guns(&self) -> anyhow::Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            /// notary-server writes an empty page's records as `null`.
            records: Option<Vec<Record>>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Record {
            #[serde(rename = "ID")]
            id: String,
            #[serde(rename = "GUN")]
            gun: String,
            category: String,
        }
        let mut live = BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let path = format!("/v2/_trust/changefeed?change_id={cursor}&records={FEED_PAGE}");
            let bytes = self
                .get(&path, FEED_MAX_BYTES)
                .await
                .map_err(anyhow::Error::msg)?
                .context("the source has no changefeed (GET /v2/_trust/changefeed is 404)")?;
            let page: Page =
                serde_json::from_slice(&bytes).context("reading the source's changefeed")?;
            let records = page.records.unwrap_or_default();
            let Some(last) = records.last() else {
                break;
            };
            let next = last.id.clone();
            let ordered = |id: &str| id.parse::<u64>().ok();
            if ordered(&next) <= ordered(&cursor) {
                bail!("the source's changefeed does not advance past ID {cursor}");
            }
            for record in &records {
                if record.category == "deletion" {
                    live.remove(&record.gun);
                } else {
                    live.insert(record.gun.clone());
                }
            }
            cursor = next;
        }
        Ok(live.into_iter().collect())
    }

    /// Everything the source serves of `gun`: (role, version) → bytes.
    async fn fetch(
        &self,
        gun: &Gun,
        max_file_bytes: u64,
    ) -> Result<BTreeMap<(String, u64), Vec<u8>>, String> {
        let get = |file: String, max: u64| async move {
            self.get(&Self::tuf_path(gun, &file), max).await
        };
        let timestamp = get("timestamp.json".into(), TIMESTAMP_MAX_BYTES)
            .await?
            .ok_or_else(|| format!("the source has no trust data for {gun}"))?;
        let parsed: NotaryTimestamp = NotarySigned::from_bytes(&timestamp)
            .and_then(|s| s.parse("Timestamp"))
            .map_err(|e| format!("timestamp.json: {e}"))?;
        let mut files = BTreeMap::new();
        let mut current: BTreeMap<String, u64> = BTreeMap::new();
        current.insert("timestamp".into(), parsed.version);
        files.insert(("timestamp".to_string(), parsed.version), timestamp);

        // Current files by the checksum their parent lists, as clients fetch them.
        let by_checksum = |role: &str, meta: Option<&tagtrust_shared::notary::FileMeta>| {
            let sha256 = meta
                .and_then(|m| m.hashes.get("sha256"))
                .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
                .map(hex::encode)
                .ok_or_else(|| format!("no sha256 of {role} to fetch it by"))?;
            Ok::<_, String>(format!("{role}.{sha256}.json"))
        };
        let name = by_checksum("snapshot", parsed.meta.get("snapshot"))?;
        let snapshot = get(name.clone(), max_file_bytes)
            .await?
            .ok_or_else(|| format!("{name} is not served"))?;
        let parsed: NotarySnapshot = NotarySigned::from_bytes(&snapshot)
            .and_then(|s| s.parse("Snapshot"))
            .map_err(|e| format!("{name}: {e}"))?;
        current.insert("snapshot".into(), parsed.version);
        files.insert(("snapshot".to_string(), parsed.version), snapshot);
        for (role, meta) in &parsed.meta {
            if !crate::publish::notary::is_role_name(role) {
                return Err(format!("the snapshot lists {role:?}, not a Notary role"));
            }
            let name = by_checksum(role, Some(meta))?;
            let bytes = get(name.clone(), max_file_bytes)
                .await?
                .ok_or_else(|| format!("{name} is not served"))?;
            let (_, version) =
                crate::dialect::declared(&bytes).map_err(|e| format!("{name}: {e}"))?;
            current.insert(role.clone(), version);
            files.insert((role.clone(), version), bytes);
        }

        // Older versions, down to the first the source does not have.
        for (role, newest) in current {
            if newest > MAX_VERSIONS {
                return Err(format!(
                    "{role} is at version {newest}; more than {MAX_VERSIONS} versions are not imported"
                ));
            }
            for version in (1..newest).rev() {
                match get(format!("{version}.{role}.json"), max_file_bytes).await? {
                    Some(bytes) => {
                        files.insert((role.clone(), version), bytes);
                    }
                    None => break,
                }
            }
        }
        Ok(files)
    }
}

/// Import the GUNs `args` names (or all of the source's) into the database
/// `settings` names.
pub async fn run(settings: &Settings, args: ImportNotary) -> anyhow::Result<()> {
    let source = Source {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?,
        base: args.from.trim_end_matches('/').to_string(),
        authorization: args.authorization,
    };
    let guns = if args.all {
        source.all_guns().await?
    } else {
        args.guns
    };
    let storage = Storage::connect(settings).await?;
    let max_file_bytes = settings.max_file_bytes as u64;
    let mut refused = 0;
    let mut out = std::io::stdout().lock();
    for gun in &guns {
        match import_gun(&storage, &source, gun, max_file_bytes).await {
            Ok(line) => writeln!(out, "{}", escape(&line))?,
            Err(reason) => {
                refused += 1;
                tracing::debug!(gun = %gun, reason = %reason, "import refused");
                eprintln!(
                    "tagtrust-server: refused {}: {}",
                    escape(gun),
                    escape(&reason)
                );
            }
        }
    }
    if refused > 0 {
        bail!("{refused} of {} GUNs refused", guns.len());
    }
    Ok(())
}

/// Fetch, verify and store one GUN; the line to print or why not.
async fn import_gun(
    storage: &Storage,
    source: &Source,
    gun: &str,
    max_file_bytes: u64,
) -> Result<String, String> {
    let gun = Gun::parse(gun).map_err(|e| e.to_string())?;
    let files = source.fetch(&gun, max_file_bytes).await?;
    let plan = plan_import(gun.as_str(), &files, Utc::now()).map_err(|e| e.to_string())?;
    store(storage, &gun, &plan)
        .await
        .map_err(|e| e.to_string())?;
    let versions = |role: &str| plan.store.iter().filter(|(r, _, _)| r == role).count();
    let delegations: BTreeSet<&str> = plan
        .store
        .iter()
        .map(|(role, _, _)| role.as_str())
        .filter(|role| role.starts_with("targets/"))
        .collect();
    Ok(format!(
        "imported {gun}: {} files ({} root, {} targets, {} delegation, {} snapshot, {} timestamp versions), \
         timestamp v{} expires {}: run `notary key rotate {gun} timestamp -r` against this server before then",
        plan.store.len(),
        versions("root"),
        versions("targets"),
        plan.store.len()
            - versions("root")
            - versions("targets")
            - versions("snapshot")
            - versions("timestamp"),
        versions("snapshot"),
        versions("timestamp"),
        plan.timestamp_version,
        plan.timestamp_expires
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    ) + &if delegations.is_empty() {
        String::new()
    } else {
        format!(" (delegations: {})", delegations.into_iter().collect::<Vec<_>>().join(", "))
    })
}

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("{0} is already held on this server; an import never replaces a repository")]
    Held(String),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// Store `plan` as a Notary repository awaiting its timestamp key
/// rotation, in one transaction; refused if anything of `gun` is held.
async fn store(storage: &Storage, gun: &Gun, plan: &NotaryImport) -> Result<(), StoreError> {
    let mut repo = storage.lock(gun.as_str()).await?;
    if repo.has_keys().await? || !repo.current_files().await?.is_empty() || repo.is_mirrored() {
        return Err(StoreError::Held(gun.to_string()));
    }
    repo.insert_files(&plan.store).await?;
    repo.set_dialect(Dialect::Notary).await?;
    repo.set_awaiting_rotation(true).await?;
    repo.commit().await?;
    Ok(())
}

/// `tagtrust-server notary-pending`: the imported Notary repositories still
/// awaiting `notary key rotate GUN timestamp -r` here, with the deadline.
pub async fn pending(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let storage = Storage::connect(settings).await?;
    let rows = storage.awaiting_rotation().await?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "GUN\tTIMESTAMP\tEXPIRES")?;
    for row in rows {
        let expires = row
            .timestamp_expires_at
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_else(|| "-".into());
        let version = row
            .timestamp_version
            .map_or_else(|| "-".into(), |v| format!("v{v}"));
        writeln!(out, "{}\t{version}\t{expires}", escape(&row.gun))?;
    }
    Ok(())
}
