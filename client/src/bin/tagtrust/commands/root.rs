//! Multi-party root: root sign, publish, status, import, discard, and the
//! holder changes add-key, remove-key, set-threshold.

use super::Invocation;
use crate::args::RootCommand;
use crate::render;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tagtrust::keyring::read_public_keys;
use tagtrust::rotation::RootKeyChange;
use tagtrust::staging::{self, Staging};
use tagtrust_shared::Gun;

pub fn run(inv: &Invocation, command: RootCommand) -> Result<()> {
    match command {
        RootCommand::Sign { gun, key, staged } => sign(inv, &gun, &key, staged),
        RootCommand::Publish { gun, staged } => publish(inv, &gun, staged.as_deref()),
        RootCommand::Status { gun, staged } => status(inv, &gun, staged),
        RootCommand::Import { file } => import(inv, &file),
        RootCommand::Discard { gun } => discard(inv, &gun),
        RootCommand::AddKey {
            gun,
            keys,
            threshold,
        } => {
            let change = RootKeyChange {
                add: read_public_keys(&keys)?,
                remove: Vec::new(),
                threshold,
            };
            change_keys(inv, &gun, &change)
        }
        RootCommand::RemoveKey {
            gun,
            key_ids,
            threshold,
        } => {
            let change = RootKeyChange {
                add: Vec::new(),
                remove: key_ids,
                threshold,
            };
            change_keys(inv, &gun, &change)
        }
        RootCommand::SetThreshold { gun, threshold } => {
            let change = RootKeyChange {
                threshold: Some(threshold),
                ..Default::default()
            };
            change_keys(inv, &gun, &change)
        }
    }
}

fn sign(inv: &Invocation, gun: &Gun, key: &Path, staged: Option<PathBuf>) -> Result<()> {
    let report = match inv.server() {
        Ok(_) => inv.publisher()?.root_sign(gun, key, staged.as_deref())?,
        // No server: only a staged file can be signed.
        Err(e) => {
            let staging = Staging::at(staged.context(e)?);
            staging::sign_staged(&staging, gun, key, None, inv.passphrases.as_ref())?
        }
    };
    inv.out.print(&report, || render::root_signing(&report))
}

fn publish(inv: &Invocation, gun: &Gun, staged: Option<&Path>) -> Result<()> {
    let report = inv.publisher()?.root_publish(gun, staged)?;
    inv.out.print(&report, || render::root_signing(&report))
}

fn status(inv: &Invocation, gun: &Gun, staged: Option<PathBuf>) -> Result<()> {
    let report = match inv.server() {
        Ok(_) => inv.publisher()?.root_status(gun, staged.as_deref())?,
        // No server: only a staged file can be shown.
        Err(e) => staging::staged_standing(&Staging::at(staged.context(e)?), gun, None)?,
    };
    inv.out.print(&report, || render::root_signing(&report))
}

fn import(inv: &Invocation, file: &Path) -> Result<()> {
    let report = inv.publisher()?.root_import(file)?;
    inv.out.print(&report, || render::root_signing(&report))
}

fn discard(inv: &Invocation, gun: &Gun) -> Result<()> {
    let staged = inv.publisher()?.root_discard(gun)?;
    inv.out
        .print(&staged, || render::discarded_root(gun, &staged))
}

fn change_keys(inv: &Invocation, gun: &Gun, change: &RootKeyChange) -> Result<()> {
    let report = inv.publisher()?.change_root_keys(gun, change)?;
    inv.out.print(&report, || render::role_report(&report))
}
