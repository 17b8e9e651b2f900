//! Creating and keeping up a repository: init, bins enable, refresh.

use super::Invocation;
use crate::render;
use anyhow::{bail, Result};
use std::path::PathBuf;
use tagtrust::bins::{BinForm, BinKeys};
use tagtrust::keyring::{read_public_keys, refresh_signer};
use tagtrust_shared::Gun;

pub fn init(
    inv: &Invocation,
    gun: &Gun,
    root_key_files: &[PathBuf],
    root_keys: usize,
    root_threshold: Option<u64>,
    bins: Option<(u64, BinForm, BinKeys)>,
) -> Result<()> {
    let holders = read_public_keys(root_key_files)?;
    let publisher = inv.publisher()?;
    if let Some((bins, _, _)) = bins {
        // Checked before anything is created.
        tagtrust::bins::succinct_roles(
            bins,
            &tagtrust_shared::SigningKey::generate().public_key(),
        )?;
    }
    let report = publisher.init(gun, root_keys, &holders, root_threshold)?;
    let Some((bins, form, bin_keys)) = bins else {
        return inv.out.print(&report, || render::init(&report));
    };
    if report.root_signatures_needed > 0 {
        inv.out.print(&report, || render::init(&report))?;
        bail!("root v1 is staged, so no bins were made: run `tagtrust bins enable {gun} --bins {bins}` once it is published");
    }
    let binned = publisher.enable_bins(gun, bins, form, bin_keys)?;
    inv.out.print(
        &serde_json::json!({ "init": &report, "bins": &binned }),
        || format!("{}\n{}", render::init(&report), render::bins(&binned)),
    )
}

pub fn enable_bins(
    inv: &Invocation,
    gun: &Gun,
    bins: u64,
    form: BinForm,
    bin_keys: BinKeys,
) -> Result<()> {
    let report = inv.publisher()?.enable_bins(gun, bins, form, bin_keys)?;
    inv.out.print(&report, || render::bins(&report))
}

pub fn refresh(inv: &Invocation, gun: &Gun, role: &str, key: Option<PathBuf>) -> Result<()> {
    let signer = refresh_signer(&inv.home, gun, role, key)?;
    let report = inv.publisher()?.refresh_role(gun, &signer, role)?;
    inv.out
        .print(&report, || render::refreshed(role, gun, &report))
}
