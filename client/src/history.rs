//! `tagtrust history GUN:TAG`: every change of a tag, from the versions of
//! top-level targets the server retains, each verified.
//!
//! The root chain `1.root.json` .. current is walked forward with the same
//! rules as an update (each root signed by the previous one's keys and its
//! own) and must end at the root the updater just trusted; every old
//! targets version must then be signed by a threshold of the targets keys
//! of some root in that chain. An attacker who cannot forge the current
//! root cannot slip in an old root with other targets keys: that root
//! would need the real root keys' signatures.

use crate::fetch::{Fetcher, HttpFetcher, HttpOptions};
use crate::home::Home;
use crate::lookup::{open_repository, OpenOptions};
use crate::remote::metadata_url;
use crate::trusted::TrustedMetadataSet;
use crate::updater::UpdaterConfig;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tagtrust_shared::metadata::signed_at;
use tagtrust_shared::{ImageReference, Metadata, Root, Targets};

/// One change of the tag.
#[derive(Debug, Serialize, PartialEq)]
pub struct HistoryEntry {
    /// The targets version that made the change.
    pub targets_version: u64,
    /// The new digest, or `None` when the tag was removed.
    pub digest: Option<String>,
    pub size: Option<u64>,
    /// When it was signed (as recorded by the signer), if known.
    pub signed_at: Option<DateTime<Utc>>,
    /// Key IDs whose signatures it carries.
    pub signed_by: Vec<String>,
}

/// The verified history of `reference`'s tag in top-level targets.
pub fn history(
    home: &Home,
    server: &str,
    reference: &ImageReference,
    options: &OpenOptions,
) -> Result<Vec<HistoryEntry>> {
    let gun = &reference.gun;
    let repo = open_repository(home, server, gun, options)?;
    let trusted = repo.updater.trusted();
    let current_root = trusted.root();
    let current_targets = trusted.targets().context("no trusted targets metadata")?;

    let mut http = HttpOptions::default();
    if let Some(token) = &options.token {
        http = http.with_bearer_token(token);
    }
    let fetcher = HttpFetcher::new(http)?;
    let base = metadata_url(server, gun);
    let config = UpdaterConfig::default();
    let get = |file: &str, max: u64| {
        fetcher
            .fetch(&format!("{base}{file}"), max)
            .with_context(|| format!("fetching {file} of {gun}"))
    };

    // The root chain, forward, ending at the trusted root.
    let first = get("1.root.json", config.root_max_length)?;
    let mut chain = TrustedMetadataSet::new(&first, Utc::now()).context("1.root.json")?;
    let mut roots: Vec<Root> = vec![chain.root().signed.clone()];
    for version in 2..=current_root.signed.version {
        let bytes = get(&format!("{version}.root.json"), config.root_max_length)?;
        chain
            .update_root(&bytes)
            .with_context(|| format!("{version}.root.json"))?;
        roots.push(chain.root().signed.clone());
    }
    if chain.root().canonical_signed() != current_root.canonical_signed() {
        bail!("the server's root history does not lead to the trusted root of {gun}");
    }

    let mut entries = Vec::new();
    let mut previous: Option<(String, u64)> = None;
    for version in 1..=current_targets.signed.version {
        let bytes = get(
            &format!("{version}.targets.json"),
            config.targets_max_length,
        )?;
        let md = Metadata::<Targets>::from_bytes(&bytes)
            .with_context(|| format!("{version}.targets.json"))?;
        if md.signed.version != version {
            bail!("{version}.targets.json has version {}", md.signed.version);
        }
        if !roots
            .iter()
            .any(|root| root.verify_role("targets", &md).is_ok())
        {
            bail!("{version}.targets.json is not signed by the targets keys of any root of {gun}");
        }
        let now_points = md
            .signed
            .targets
            .get(&reference.tag)
            .and_then(|t| t.digest().map(|d| (d, t.length)));
        if now_points != previous {
            entries.push(HistoryEntry {
                targets_version: version,
                digest: now_points.as_ref().map(|(d, _)| d.clone()),
                size: now_points.as_ref().map(|(_, s)| *s),
                signed_at: signed_at(&md.signed.extra),
                signed_by: md.signatures.iter().map(|s| s.keyid.clone()).collect(),
            });
            previous = now_points;
        }
    }
    Ok(entries)
}
