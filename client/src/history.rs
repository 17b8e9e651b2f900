//! `tagtrust history GUN:TAG`: every change of a tag, from the versions of
//! top-level targets the server retains, each verified.
//!
//! The root chain is walked forward from the anchor: the first root this
//! home trusted for the GUN (kept by [`crate::lookup::store_initial_root`]),
//! with the same rules as an update (each root signed by the previous one's
//! keys and its own), and must end at the root the updater just trusted.
//! Starting from the server's `1.root.json` instead would be unsound: a
//! server can forge roots 1..N-1 and add its own signature to the real root
//! N (signatures are outside what is signed). Every old targets version
//! must then be signed by a threshold of the targets keys of some root in
//! that chain; versions that are not (signed before the anchor, by keys no
//! chained root lists) are reported as unverifiable, never shown as history.

use crate::fetch::Fetcher;
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
) -> Result<History> {
    let gun = &reference.gun;
    let repo = open_repository(home, server, gun, options)?;
    let trusted = repo.updater.trusted();
    let current_root = trusted.root();
    let current_targets = trusted.targets().context("no trusted targets metadata")?;

    let fetcher = crate::lookup::http_fetcher(options)?;
    let base = metadata_url(server, gun);
    let config = UpdaterConfig::default();
    let get = |file: &str, max: u64| {
        fetcher
            .fetch(&format!("{base}{file}"), max)
            .with_context(|| format!("fetching {file} of {gun}"))
    };

    // The root chain, forward from the anchor, ending at the trusted root.
    let anchor = earliest_anchor(repo.updater.metadata_dir())?;
    let mut chain = TrustedMetadataSet::new(&anchor, Utc::now()).context("anchor root")?;
    let mut roots: Vec<Root> = vec![chain.root().signed.clone()];
    for version in chain.root().signed.version + 1..=current_root.signed.version {
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
    let mut unverifiable = Vec::new();
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
            unverifiable.push(version);
            continue;
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
    Ok(History {
        gun: gun.to_string(),
        tag: reference.tag.clone(),
        entries,
        unverifiable_versions: unverifiable,
    })
}

/// The verified history of a tag.
#[derive(Debug, Serialize)]
pub struct History {
    pub gun: String,
    pub tag: String,
    pub entries: Vec<HistoryEntry>,
    /// Targets versions not signed by the targets keys of any root from
    /// the anchor on: left out of `entries`.
    pub unverifiable_versions: Vec<u64>,
}

/// The earliest root kept in the anchor directory of `dir`.
fn earliest_anchor(dir: &std::path::Path) -> Result<Vec<u8>> {
    let anchors = dir.join(crate::lookup::ANCHOR_DIR);
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
