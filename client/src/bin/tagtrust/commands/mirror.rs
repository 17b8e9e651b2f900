//! `tagtrust mirror sync`.

use super::Invocation;
use crate::args::{MirrorCommand, Output};
use crate::environment;
use anyhow::{bail, Result};
use serde::Serialize;
use std::time::{Duration, Instant};
use tagtrust::mirror::{GunOutcome, GunSync, MirrorSync};
use tagtrust::publisher::Publisher;
use tagtrust::rerooted::{self, RerootOptions};
use tagtrust::session::{OpenOptions, Session};
use tagtrust::terminal::escape;
use tagtrust_shared::Gun;

pub fn run(inv: &Invocation, command: MirrorCommand) -> Result<()> {
    match command {
        MirrorCommand::Sync {
            from,
            to,
            guns,
            all,
            follow,
            interval,
        } => sync(
            inv,
            &from,
            &to,
            guns,
            all,
            follow.then(|| Duration::from_secs(interval.max(1))),
        ),
        MirrorCommand::Import {
            from,
            to,
            gun,
            dest,
            role,
            paths,
            upstream_root,
        } => import(
            inv,
            Servers { from, to },
            &gun,
            &dest,
            RerootOptions { role, paths },
            upstream_root,
        ),
    }
}

/// The upstream and the mirror.
struct Servers {
    from: String,
    to: String,
}

/// `mirror import`: the upstream read with `TAGTRUST_UPSTREAM_TOKEN`, the
/// operator's repository published with `TAGTRUST_TOKEN`.
fn import(
    inv: &Invocation,
    servers: Servers,
    gun: &Gun,
    dest: &Gun,
    options: RerootOptions,
    upstream_root: Option<std::path::PathBuf>,
) -> Result<()> {
    let upstream = Session {
        token: environment::upstream_token(),
        ..environment::session(&inv.home, servers.from, &inv.notices)
    };
    let publisher = Publisher::new(
        environment::session(&inv.home, servers.to, &inv.notices),
        inv.passphrases.clone(),
    );
    let open = OpenOptions {
        root_file: upstream_root,
        ..OpenOptions::default()
    };
    let report = rerooted::import(&publisher, dest, &upstream, gun, &open, &options)?;
    inv.out.print(&report, || match report.targets_version {
        Some(version) => format!(
            "imported {} into {} as {} (targets v{version}): {}",
            escape(&report.upstream_gun),
            escape(&report.gun),
            escape(&report.role),
            if report.imported.is_empty() {
                "delegation updated".to_string()
            } else {
                tagtrust::terminal::escape_join(&report.imported, ", ")
            }
        ),
        None => format!(
            "{} is up to date with {} (upstream targets v{})",
            escape(&report.gun),
            escape(&report.upstream_gun),
            report.upstream_targets_version
        ),
    })
}

/// What `-o json` prints for a round of copies.
#[derive(Default, Serialize)]
struct Summary {
    guns: Vec<GunLine>,
    files: usize,
    bytes: u64,
    refused: usize,
    seconds: f64,
}

#[derive(Serialize)]
struct GunLine {
    gun: String,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_version: Option<u64>,
    files: usize,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Summary {
    fn add(&mut self, sync: GunSync) {
        let (outcome, timestamp_version, files, bytes, reason) = match sync.outcome {
            GunOutcome::Copied {
                files,
                bytes,
                timestamp_version,
            } => ("copied", Some(timestamp_version), files, bytes, None),
            GunOutcome::UpToDate { timestamp_version } => {
                ("up-to-date", Some(timestamp_version), 0, 0, None)
            }
            GunOutcome::Refused { reason } => ("refused", None, 0, 0, Some(reason)),
        };
        self.files += files;
        self.bytes += bytes;
        self.refused += usize::from(reason.is_some());
        self.guns.push(GunLine {
            gun: sync.gun.to_string(),
            outcome,
            timestamp_version,
            files,
            bytes,
            reason,
        });
    }

    fn text(&self) -> String {
        let mut out: Vec<String> = self
            .guns
            .iter()
            .map(|g| match (g.outcome, &g.reason) {
                (_, Some(reason)) => format!("refused {}: {}", escape(&g.gun), escape(reason)),
                ("copied", _) => format!(
                    "copied {}: {} files, {} bytes, timestamp v{}",
                    escape(&g.gun),
                    g.files,
                    g.bytes,
                    g.timestamp_version.unwrap_or_default()
                ),
                _ => format!(
                    "up to date {} (timestamp v{})",
                    escape(&g.gun),
                    g.timestamp_version.unwrap_or_default()
                ),
            })
            .collect();
        out.push(format!(
            "{} GUNs, {} files, {} bytes, {} refused, {:.1}s",
            self.guns.len(),
            self.files,
            self.bytes,
            self.refused,
            self.seconds
        ));
        out.join("\n")
    }
}

/// Copy `guns` once (with a progress bar on a terminal), print the summary.
fn copy_round(inv: &Invocation, mirror: &MirrorSync, guns: &[Gun]) -> Result<Summary> {
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(guns.len() as u64);
    if inv.out.0 == Output::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} GUNs, {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut files = 0u64;
    let mut summary = Summary::default();
    for gun in guns {
        let sync = mirror.sync_gun(gun, &mut |_| {
            files += 1;
            bar.set_message(format!("{files} files copied"));
        });
        summary.add(sync);
        bar.inc(1);
    }
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    inv.out.print(&summary, || summary.text())?;
    Ok(summary)
}

fn sync(
    inv: &Invocation,
    from: &str,
    to: &str,
    guns: Vec<Gun>,
    all: bool,
    follow: Option<Duration>,
) -> Result<()> {
    let mut upstream_http = environment::http_options();
    if let Some(token) = environment::upstream_token() {
        upstream_http = upstream_http.with_bearer_token(&token);
    }
    let mirror = MirrorSync::new(
        from,
        upstream_http,
        to,
        environment::token(),
        environment::http_options(),
    )?;
    // The feed position before the first copy, so a change made during it
    // is copied by the next poll.
    let feed_gun = match guns.as_slice() {
        [one] if !all => Some(one.clone()),
        _ => None,
    };
    let mut cursor = match follow {
        Some(_) => newest_id(&mirror, feed_gun.as_ref())?,
        None => 0,
    };
    let guns = if all { mirror.upstream_guns()? } else { guns };
    let summary = copy_round(inv, &mirror, &guns)?;
    let Some(interval) = follow else {
        if summary.refused > 0 {
            bail!("{} of {} GUNs refused", summary.refused, summary.guns.len());
        }
        return Ok(());
    };
    loop {
        std::thread::sleep(interval);
        let mut changed: Vec<Gun> = Vec::new();
        loop {
            let page = match mirror.changefeed_page(feed_gun.as_ref(), cursor, 1000) {
                Ok(page) => page,
                Err(e) => {
                    crate::render::warning(&format!("polling the upstream changefeed: {e}"));
                    break;
                }
            };
            let Some(last) = page.last() else { break };
            cursor = last.id;
            for record in &page {
                let Ok(gun) = Gun::parse(&record.gun) else {
                    continue;
                };
                if record.category != "deletion"
                    && (all || guns.contains(&gun))
                    && !changed.contains(&gun)
                {
                    changed.push(gun);
                }
            }
        }
        if !changed.is_empty() {
            copy_round(inv, &mirror, &changed)?;
        }
    }
}

/// The ID of the newest changefeed record (0 when there is none).
fn newest_id(mirror: &MirrorSync, gun: Option<&Gun>) -> Result<i64> {
    Ok(mirror
        .changefeed_page(gun, -1, 1)?
        .last()
        .map_or(0, |record| record.id))
}
