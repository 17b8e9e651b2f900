//! Local private keys: key generate, list, export, import, rotate.

use super::Invocation;
use crate::args::KeyCommand;
use crate::environment::NotaryPassphrase;
use crate::render;
use anyhow::Result;
use std::path::Path;
use tagtrust::keyring::{self, KeyImport};
use tagtrust::notary_migrate::NotaryPassphrases;
use tagtrust::passphrase::PassphraseSource;
use tagtrust_shared::Gun;

pub fn run(inv: &Invocation, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Generate { name, out } => generate(inv, &name, out.as_deref()),
        KeyCommand::List => list(inv),
        KeyCommand::Export { key_id, out } => export(inv, &key_id, &out),
        KeyCommand::Import { file, gun, role } => import(inv, &file, gun.as_ref(), role.as_deref()),
        KeyCommand::Rotate { gun, role } => rotate(inv, &gun, &role),
    }
}

fn generate(inv: &Invocation, name: &str, out: Option<&Path>) -> Result<()> {
    let pass = inv.passphrases.passphrase("Passphrase for the new key: ")?;
    let key = keyring::generate_key(&inv.home, name, out, &pass)?;
    inv.out
        .print(&key, || key.public_key_pem.trim_end().to_string())
}

fn list(inv: &Invocation) -> Result<()> {
    let keys = inv.home.list_keys()?;
    inv.out.print(&keys, || render::keys(&keys))
}

fn export(inv: &Invocation, key_id: &str, out: &Path) -> Result<()> {
    let key = keyring::export_key(&inv.home, key_id, out)?;
    inv.out.print(&key, || render::exported_key(&key))
}

/// A tagtrust key file is checked with its passphrase and stored as it
/// is; a Notary key file is opened with its Notary passphrase and stored
/// under the home's.
fn import(inv: &Invocation, file: &Path, gun: Option<&Gun>, role: Option<&str>) -> Result<()> {
    let import = KeyImport::read(file)?;
    let role = match role {
        Some(role) => role.to_string(),
        None => import.default_role()?,
    };
    let key = match import.notary_key() {
        Some((notary_role, key_id)) => {
            let opened = import.open_notary(&NotaryPassphrase.passphrase(notary_role, key_id)?)?;
            let pass = inv
                .passphrases
                .passphrase("Passphrase for the imported key in this home: ")?;
            keyring::store_opened(&inv.home, &opened, &pass, gun, &role)?
        }
        None => {
            let pass = inv
                .passphrases
                .passphrase(&format!("Passphrase for {}: ", file.display()))?;
            import.store(&inv.home, &pass, gun, &role)?
        }
    };
    inv.out.print(&key, || render::imported_key(&key))
}

fn rotate(inv: &Invocation, gun: &Gun, role: &str) -> Result<()> {
    let report = inv.publisher()?.rotate_key(gun, role)?;
    inv.out
        .print(&report, || render::rotated_key(role, gun, &report))
}
