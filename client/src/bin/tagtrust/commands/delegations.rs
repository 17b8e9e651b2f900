//! Delegating tags to other signers: delegation add, rm, list.

use super::Invocation;
use crate::args::DelegationCommand;
use crate::render;
use anyhow::Result;
use tagtrust::keyring::read_public_keys;
use tagtrust::publisher::NewDelegation;
use tagtrust_shared::Gun;

pub fn run(inv: &Invocation, command: DelegationCommand) -> Result<()> {
    match command {
        DelegationCommand::Add {
            gun,
            name,
            keys,
            paths,
            threshold,
            terminating,
        } => {
            let delegation = NewDelegation {
                name,
                keys: read_public_keys(&keys)?,
                paths,
                threshold,
                terminating,
            };
            add(inv, &gun, &delegation)
        }
        DelegationCommand::Rm { gun, name } => rm(inv, &gun, &name),
        DelegationCommand::List { gun } => list(inv, &gun),
    }
}

fn add(inv: &Invocation, gun: &Gun, delegation: &NewDelegation) -> Result<()> {
    let report = inv.publisher()?.delegation_add(gun, delegation)?;
    inv.out
        .print(&report, || render::delegated(gun, delegation, &report))
}

fn rm(inv: &Invocation, gun: &Gun, name: &str) -> Result<()> {
    let report = inv.publisher()?.delegation_rm(gun, name)?;
    inv.out
        .print(&report, || render::delegation_removed(gun, name, &report))
}

fn list(inv: &Invocation, gun: &Gun) -> Result<()> {
    let list = inv.publisher()?.delegation_list(gun)?;
    inv.out.print(&list, || render::delegations(&list))
}
