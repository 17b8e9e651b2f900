//! Creating and keeping up a repository: init, refresh.

use super::Invocation;
use crate::render;
use anyhow::Result;
use std::path::PathBuf;
use tagtrust::keyring::{read_public_keys, refresh_signer};
use tagtrust_shared::Gun;

pub fn init(
    inv: &Invocation,
    gun: &Gun,
    root_key_files: &[PathBuf],
    root_keys: usize,
    root_threshold: Option<u64>,
) -> Result<()> {
    let holders = read_public_keys(root_key_files)?;
    let report = inv
        .publisher()?
        .init(gun, root_keys, &holders, root_threshold)?;
    inv.out.print(&report, || render::init(&report))
}

pub fn refresh(inv: &Invocation, gun: &Gun, role: &str, key: Option<PathBuf>) -> Result<()> {
    let signer = refresh_signer(role, key)?;
    let report = inv.publisher()?.refresh_role(gun, &signer, role)?;
    inv.out
        .print(&report, || render::refreshed(role, gun, &report))
}
