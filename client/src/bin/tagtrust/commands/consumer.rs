//! Reading a repository: lookup, list, pull, status, history.

use super::Invocation;
use crate::args::ConsumerArgs;
use crate::environment;
use crate::render;
use anyhow::Result;
use std::path::PathBuf;
use tagtrust::pull_report::{self, PullReport};
use tagtrust::session::OpenOptions;
use tagtrust::{announce, registry};
use tagtrust_shared::{Gun, ImageReference};

/// How a consumer reads: its flags, `freshness.max_age` from config when
/// `--max-age` is not given.
fn open_options(inv: &Invocation, consumer: ConsumerArgs) -> Result<OpenOptions> {
    Ok(OpenOptions {
        root_file: consumer.root,
        offline: consumer.offline,
        max_stale: consumer.max_stale,
        max_age: match consumer.max_age {
            Some(age) => Some(age),
            None => inv.config.freshness.max_age()?,
        },
        use_mirrors: true,
    })
}

/// Say up front that nothing will be fetched.
fn announce_offline(inv: &Invocation, options: &OpenOptions, gun: &Gun) {
    if options.offline {
        inv.notices.push(announce::offline(gun));
    }
}

pub fn lookup(inv: &Invocation, reference: &str, consumer: ConsumerArgs) -> Result<()> {
    let reference = ImageReference::parse(reference)?;
    let options = open_options(inv, consumer)?;
    announce_offline(inv, &options, &reference.gun);
    let (resolution, _repo) = tagtrust::lookup::lookup(&inv.session()?, &reference, &options)?;
    inv.out.print(&resolution, || {
        tagtrust::terminal::escape(&resolution.digest).into_owned()
    })
}

pub fn list(inv: &Invocation, gun: &Gun) -> Result<()> {
    let tags = inv.publisher()?.list(gun)?;
    inv.out.print(&tags, || render::tags(&tags))
}

/// The verified manifest to `file` or stdout.
pub fn pull(
    inv: &Invocation,
    reference: &str,
    consumer: ConsumerArgs,
    registry: Option<String>,
    file: Option<PathBuf>,
) -> Result<()> {
    let options = open_options(inv, consumer)?;
    let reference = ImageReference::parse(reference)?;
    announce_offline(inv, &options, &reference.gun);
    let (pulled, _repo) = registry::pull(
        &inv.session()?,
        &reference,
        &options,
        registry.as_deref(),
        environment::registry_credentials(),
    )?;
    if let Some(path) = &file {
        pull_report::write_manifest(&pulled, path)?;
    }
    let report = PullReport::new(&pulled, file.as_deref());
    render::pulled(&inv.out, &reference, &report, &pulled.manifest)
}

pub fn status(inv: &Invocation, gun: &Gun, warning_days: Option<i64>) -> Result<()> {
    let days = warning_days.unwrap_or(inv.config.expiry.warning_days);
    let report = tagtrust::status::status(&inv.session()?, gun, days)?;
    for warning in &report.warnings {
        render::warning(warning);
    }
    inv.out.print(&report, || render::status(&report))
}

pub fn history(inv: &Invocation, reference: &str) -> Result<()> {
    let reference = ImageReference::parse(reference)?;
    let history = tagtrust::history::history(&inv.session()?, &reference)?;
    inv.out.print(&history, || render::history(&history))
}
