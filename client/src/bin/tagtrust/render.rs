//! Output: results as JSON or as text lines, notices and warnings on
//! stderr. Every word that came from metadata, a staged file or a server
//! is escaped here ([`escape`], [`E`]) before it reaches the terminal.

use crate::args::Output;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use tagtrust::history::History;
use tagtrust::home::KeyFile;
use tagtrust::init::InitReport;
use tagtrust::keyring::StoredKey;
use tagtrust::publisher::{
    DelegationEntry, DelegationReport, NewDelegation, TagEntry, TagReport, TagTarget, TagsReport,
};
use tagtrust::pull_report::PullReport;
use tagtrust::rotation::RoleReport;
use tagtrust::staging::{RootSigning, StagedChange};
use tagtrust::status::Status;
use tagtrust::terminal::{escape, escape_join, Escaped as E};
use tagtrust_shared::{Gun, ImageReference};

/// Prints a result as text or JSON.
pub struct Printer(pub Output);

impl Printer {
    /// `value` as pretty JSON, or the `text` it renders to (nothing when
    /// the text is empty).
    pub fn print<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        match self.0 {
            Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Output::Text => {
                let text = text();
                if !text.is_empty() {
                    println!("{text}");
                }
            }
        }
        Ok(())
    }
}

/// A notice from the library, one escaped line on stderr as it happens.
pub fn notice(line: &str) {
    eprintln!("notice: {}", escape(line));
}

/// A warning (e.g. a role expiring soon), one escaped line on stderr.
pub fn warning(line: &str) {
    eprintln!("warning: {}", escape(line));
}

/// The error that ended the command, with its causes, on one escaped line
/// (causes can carry a server's words, which could otherwise rewrite the
/// terminal).
pub fn error(error: &anyhow::Error) {
    // Library errors say their cause and also expose it as the source:
    // error_line says each cause once.
    let line = tagtrust::error_line::error_line(error.as_ref());
    eprintln!("tagtrust: error: {}", escape(&line));
}

/// Lines, one per row.
fn table<T>(rows: &[T], row: impl Fn(&T) -> String) -> String {
    rows.iter().map(row).collect::<Vec<_>>().join("\n")
}

pub fn init(report: &InitReport) -> String {
    if !report.root_signing.published {
        return root_signing(&report.root_signing);
    }
    format!(
        "initialised {} (root keys {}, threshold {}; targets key {})",
        report.gun,
        escape_join(&report.root_key_ids, ", "),
        report.root_threshold,
        E(&report.targets_key_id)
    )
}

/// Where a root change stands, in words: published, or staged with what
/// it still needs and from whom.
pub fn root_signing(r: &RootSigning) -> String {
    let old = r
        .old_root
        .as_ref()
        .map(|t| {
            format!(
                ", old root v{} {} of {}",
                t.root_version,
                t.signed_by.len(),
                t.threshold
            )
        })
        .unwrap_or_default();
    let counts = format!(
        "new root {} of {}{old}",
        r.new_root.signed_by.len(),
        r.new_root.threshold
    );
    if r.published {
        return format!(
            "published root v{} of {} ({}; {counts})",
            r.version,
            r.gun,
            E(&r.change)
        );
    }
    // A staged file travels between holders: its words are escaped too.
    let mut lines = vec![format!(
        "root v{} of {}: {}",
        r.version,
        r.gun,
        E(&r.change)
    )];
    lines.extend(r.differences.iter().map(|d| format!("  {}", E(d))));
    if let Some(file) = &r.staged_file {
        lines.push(format!("  staged in {}", file.display()));
    }
    if !r.previous_root_checked && r.old_root.is_some() {
        lines.push(
            "  note: the root it replaces is as the staged file says; this home could not check it against a root it trusts"
                .into(),
        );
    }
    if r.needed == 0 {
        lines.push(format!(
            "ready ({counts}): run `tagtrust root publish {}`",
            r.gun
        ));
    } else {
        lines.push(format!(
            "{}; run `tagtrust root sign {} --key FILE` on each holder's machine",
            E(&r.missing()),
            r.gun
        ));
    }
    lines.join("\n")
}

pub fn discarded_root(gun: &Gun, staged: &StagedChange) -> String {
    format!(
        "dropped the staged root change of {gun} ({})",
        E(&staged.change)
    )
}

/// A rotation, refresh or holder change, in words.
pub fn role_report(r: &RoleReport) -> String {
    match &r.root_signing {
        Some(signing) => root_signing(signing),
        None => format!("root version {}", r.root_version),
    }
}

pub fn rotated_key(role: &str, gun: &Gun, report: &RoleReport) -> String {
    format!(
        "new {role} key of {gun}: {}\n{}",
        E(report.new_key_id.as_deref().unwrap_or("-")),
        role_report(report)
    )
}

pub fn refreshed(role: &str, gun: &Gun, report: &RoleReport) -> String {
    match &report.root_signing {
        Some(_) => role_report(report),
        None => format!(
            "re-signed {} of {gun} (version {})",
            E(role),
            report.version.unwrap_or_default()
        ),
    }
}

pub fn tag_set(reference: &ImageReference, target: &TagTarget, report: &TagReport) -> String {
    format!(
        "{reference} -> {} (targets version {})",
        E(&target.digest),
        report.targets_version
    )
}

pub fn bins(report: &tagtrust::bins::BinsReport) -> String {
    format!(
        "{}: {} hashed bins signed by {}bin key {}, {} tags moved into them (targets version {})",
        E(&report.gun),
        report.bins,
        match report.bin_keys {
            tagtrust::bins::BinKeys::Local => "",
            tagtrust::bins::BinKeys::Server => "the server's ",
        },
        E(&report.bin_key_id),
        report.tags_moved,
        report.targets_version
    )
}

pub fn tags_set(report: &TagsReport) -> String {
    let roles: Vec<String> = report
        .roles
        .iter()
        .map(|(role, version)| format!("{} version {version}", E(role)))
        .collect();
    format!(
        "{}: {} tags set by {}",
        E(&report.gun),
        report.tags,
        roles.join(", ")
    )
}

pub fn tag_removed(reference: &ImageReference, report: &TagReport) -> String {
    format!(
        "removed {reference} (targets version {})",
        report.targets_version
    )
}

pub fn exported_key(key: &StoredKey) -> String {
    format!(
        "exported key {} (encrypted) to {}",
        E(&key.key_id),
        key.file.display()
    )
}

pub fn imported_key(key: &StoredKey) -> String {
    format!("imported key {} as {}", E(&key.key_id), key.file.display())
}

pub fn tags(tags: &[TagEntry]) -> String {
    table(tags, |t| {
        format!(
            "{}\t{}\t{}\t{}",
            E(&t.tag),
            E(t.digest.as_deref().unwrap_or("-")),
            t.size,
            E(&t.signed_by)
        )
    })
}

pub fn delegated(gun: &Gun, delegation: &NewDelegation, report: &DelegationReport) -> String {
    format!(
        "{} {} of {gun} to {} (targets version {})",
        if report.replaced {
            "replaced the delegation: delegated"
        } else {
            "delegated"
        },
        escape_join(&delegation.paths, ", "),
        E(&delegation.name),
        report.targets_version
    )
}

pub fn delegation_removed(gun: &Gun, name: &str, report: &DelegationReport) -> String {
    format!(
        "removed delegation {} of {gun} (targets version {})",
        E(name),
        report.targets_version
    )
}

pub fn delegations(list: &[DelegationEntry]) -> String {
    table(list, |d| {
        format!(
            "{}\t{}\tthreshold {}\tkeys {}{}",
            E(&d.name),
            escape_join(&d.paths, ","),
            d.threshold,
            escape_join(&d.key_ids, ","),
            if d.terminating { "\tterminating" } else { "" }
        )
    })
}

pub fn keys(keys: &[KeyFile]) -> String {
    table(keys, |k| {
        format!(
            "{}\t{}\t{}\t{}",
            E(&k.key_id),
            E(&k.role),
            E(k.gun.as_deref().unwrap_or("-")),
            E(&k.path.display().to_string())
        )
    })
}

pub fn status(report: &Status) -> String {
    table(&report.roles, |r| {
        format!(
            "{:<12} v{:<5} signed {:<20} expires {} ({}h left)  key: {}",
            E(&r.role).to_string(),
            r.version,
            r.signed_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            r.expires.format("%Y-%m-%d %H:%M:%S"),
            r.seconds_left / 3600,
            E(&r.key_holder)
        )
    })
}

pub fn history(history: &History) -> String {
    table(&history.entries, |e| {
        format!(
            "{} v{}\t{}\t{}\tsigned by {}",
            E(&e.role),
            e.version,
            E(e.digest.as_deref().unwrap_or("(removed)")),
            e.signed_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "-".into()),
            escape_join(&e.signed_by, ",")
        )
    })
}

/// A pull: the manifest bytes themselves on stdout (text, no file), else
/// the report.
pub fn pulled(
    out: &Printer,
    reference: &ImageReference,
    report: &PullReport,
    manifest: &[u8],
) -> Result<()> {
    match (&report.written_to, out.0) {
        (None, Output::Text) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(manifest)?;
            stdout.flush()?;
            Ok(())
        }
        (Some(path), _) => out.print(report, || written_manifest(reference, report, path)),
        (None, Output::Json) => out.print(report, String::new),
    }
}

fn written_manifest(reference: &ImageReference, report: &PullReport, path: &Path) -> String {
    format!(
        "{reference} -> {} ({} bytes) written to {}",
        E(&report.digest),
        report.size,
        path.display()
    )
}
