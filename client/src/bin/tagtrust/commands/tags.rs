//! Signing tags: tag set, tag rm.

use super::Invocation;
use crate::args::{SignerArgs, TagCommand};
use crate::environment;
use crate::render;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use tagtrust::keyring::tag_signer;
use tagtrust::publisher::TagReport;
use tagtrust::tag_list::parse_tag_list;
use tagtrust::tag_target::{tag_target, RegistryAccess, TargetSource};
use tagtrust_shared::{Gun, ImageReference};

pub fn run(inv: &Invocation, command: TagCommand) -> Result<()> {
    match command {
        TagCommand::Set {
            reference,
            from_file: Some(list),
            signer,
            ..
        } => set_many(inv, &reference, &list, signer),
        TagCommand::Set {
            reference,
            digest,
            size,
            media_type,
            from_registry,
            from_file: None,
            annotations,
            signer,
        } => {
            let reference = ImageReference::parse(&reference)?;
            let source = target_source(digest.zip(size), media_type, from_registry)?;
            set(inv, &reference, source, &annotations, signer)
        }
        TagCommand::Rm { reference, signer } => rm(inv, &reference, signer),
    }
}

/// The registry to read the target from, else the digest and size given.
fn target_source(
    digest_size: Option<(String, u64)>,
    media_type: Option<String>,
    from_registry: Option<String>,
) -> Result<TargetSource> {
    Ok(match (from_registry, digest_size) {
        (Some(url), _) => TargetSource::Registry(url),
        (None, Some((digest, size))) => TargetSource::Given {
            digest,
            size,
            media_type,
        },
        (None, None) => bail!("give DIGEST and --size, or --from-registry URL"),
    })
}

fn set(
    inv: &Invocation,
    reference: &ImageReference,
    source: TargetSource,
    annotations: &[String],
    signer: SignerArgs,
) -> Result<()> {
    let registry = RegistryAccess {
        config: &inv.config.registry,
        credentials: environment::registry_credentials(),
        http: &environment::http_options(),
    };
    let target = tag_target(reference, source, annotations, &registry)?;
    let signer = tag_signer(&inv.home, &reference.gun, signer.role, signer.key)?;
    let report = inv
        .publisher()?
        .tag_set(&reference.gun, &reference.tag, &target, &signer)?;
    announce_resigned(inv, &report);
    inv.out
        .print(&report, || render::tag_set(reference, &target, &report))
}

/// `tag set GUN --from-file LIST`: the whole list checked, then one publish.
fn set_many(inv: &Invocation, gun: &str, list: &Path, signer: SignerArgs) -> Result<()> {
    let gun = Gun::parse(gun)?;
    let text = if list == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the tag list from standard input")?;
        text
    } else {
        std::fs::read_to_string(list)
            .with_context(|| format!("reading the tag list {}", list.display()))?
    };
    let entries = parse_tag_list(&text).with_context(|| format!("tag list {}", list.display()))?;
    let signer = tag_signer(&inv.home, &gun, signer.role, signer.key)?;
    let report = inv.publisher()?.tag_set_many(&gun, &entries, &signer)?;
    if let Some(line) = tagtrust::announce::resigned(&report.resigned) {
        inv.notices.push(line);
    }
    inv.out.print(&report, || render::tags_set(&report))
}

fn rm(inv: &Invocation, reference: &str, signer: SignerArgs) -> Result<()> {
    let reference = ImageReference::parse(reference)?;
    let signer = tag_signer(&inv.home, &reference.gun, signer.role, signer.key)?;
    let report = inv
        .publisher()?
        .tag_rm(&reference.gun, &reference.tag, &signer)?;
    announce_resigned(inv, &report);
    inv.out
        .print(&report, || render::tag_removed(&reference, &report))
}

/// Say which roles the publish re-signed because they were about to expire.
fn announce_resigned(inv: &Invocation, report: &TagReport) {
    if let Some(line) = tagtrust::announce::resigned(&report.resigned) {
        inv.notices.push(line);
    }
}
