//! `tagtrust migrate notary GUN --trust-dir DIR [--from URL] [--to GUN]`.

use super::Invocation;
use crate::args::MigrateCommand;
use crate::environment::NotaryPassphrase;
use anyhow::Result;
use tagtrust::notary_migrate::MigrateNotary;
use tagtrust::terminal::escape;

pub fn run(inv: &Invocation, command: MigrateCommand) -> Result<()> {
    match command {
        MigrateCommand::Notary {
            gun,
            trust_dir,
            from,
            to,
        } => {
            let server = inv.server()?;
            let what = MigrateNotary {
                to: to.unwrap_or_else(|| gun.clone()),
                gun,
                from: from.unwrap_or_else(|| server.clone()),
                trust_dir,
            };
            let report = inv.publisher()?.migrate_notary(&what, &NotaryPassphrase)?;
            inv.out.print(&report, || {
                let mut lines = vec![format!(
                    "{} (Notary, root v{}, targets v{}) verified and published as {} on {}",
                    escape(&report.gun),
                    report.notary_root_version,
                    report.notary_targets_version,
                    escape(&report.to),
                    escape(&report.server),
                )];
                lines.push(format!(
                    "root keys (pin these, or the root file): {}",
                    report.root_key_ids.join(", ")
                ));
                for role in &report.roles {
                    let what = match (role.carried, role.signed) {
                        (false, _) => format!(
                            "not carried: it is delegated by a role whose keys are not here ({} tag(s) left to its holder)",
                            role.tags_left_to_holder
                        ),
                        (true, true) => format!("{} tag(s), signed here", role.tags),
                        (true, false) => format!(
                            "delegated to the same keys; its {} tag(s) wait for its key holder to sign them",
                            role.tags_left_to_holder
                        ),
                    };
                    lines.push(format!(
                        "  {} -> {}: {what}",
                        escape(&role.notary),
                        escape(&role.role)
                    ));
                }
                let stored: Vec<String> = report
                    .stored_keys
                    .iter()
                    .map(|key| format!("{} {}", escape(&key.role), key.key_id))
                    .collect();
                lines.push(format!(
                    "keys stored in this home (under its passphrase): {}",
                    stored.join(", ")
                ));
                for (tag, digest) in &report.tags {
                    lines.push(format!("  {}\t{}", escape(tag), escape(digest)));
                }
                lines.join("\n")
            })
        }
    }
}
