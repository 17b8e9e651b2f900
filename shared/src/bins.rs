//! Hashed bins as both the client and the server read them: which
//! delegations of a targets role are its bins (in either form), the rule
//! that keeps a tag from being claimed by a delegation searched before the
//! bins, and the body of the server's tag-change endpoint
//! (`POST /v2/{gun}/_trust/tags`, for bins whose key the server holds).

use crate::metadata::{DelegatedRole, Delegations, SuccinctRoles, TargetFile, Targets};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The role-name prefix of the bins (`bins-00` … `bins-ff`).
pub const BIN_PREFIX: &str = "bins";

/// How top-level targets delegates to the bins: chosen per repository,
/// because clients differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BinForm {
    /// TAP 15 `succinct_roles`: one small delegation (python-tuf, go-tuf,
    /// RSTUF and tagtrust read it).
    #[default]
    Succinct,
    /// One explicit delegated role per bin selected by
    /// `path_hash_prefixes` (spec 1.0; what tough reads).
    PathHashPrefixes,
}

/// Is `role` the first of a run of explicit bins (a `bins…` role selected
/// by name hash alone)?
fn is_explicit_bin(role: &DelegatedRole) -> bool {
    role.name.starts_with(BIN_PREFIX) && role.is_hash_bin()
}

/// The bins `targets` delegates to, in either form, as the succinct
/// delegation they amount to (an explicit form is recognised only when its
/// roles are exactly the bins that delegation describes, 2 to `max_bins`
/// of them), with the form.
pub fn hashed_bins(targets: &Targets, max_bins: u64) -> Option<(SuccinctRoles, BinForm)> {
    let delegations = targets.delegations.as_ref()?;
    if let Some(succinct) = &delegations.succinct_roles {
        return Some((succinct.clone(), BinForm::Succinct));
    }
    // Explicit bins come last, after any delegations the repository had
    // when they were enabled.
    let roles = delegations.roles();
    let first = roles.iter().position(is_explicit_bin)?;
    let bins = &roles[first..];
    let count = bins.len() as u64;
    if !(2..=max_bins).contains(&count) || !count.is_power_of_two() {
        return None;
    }
    let succinct = SuccinctRoles {
        keyids: bins[0].keyids.clone(),
        threshold: bins[0].threshold,
        bit_length: count.trailing_zeros(),
        name_prefix: BIN_PREFIX.to_string(),
        extra: Default::default(),
    };
    let matches = bins
        .iter()
        .zip(succinct.bin_names())
        .all(|(role, name)| succinct.as_delegated_role(&name).as_ref() == Some(role));
    matches.then_some((succinct, BinForm::PathHashPrefixes))
}

/// The delegated role listed before the bins whose paths take `tag`: a
/// client searches it first, so a tag placed in a bin would be looked up
/// after that role and might resolve differently. Such a tag may not go
/// into a bin (`bins enable` refuses to move one; the server refuses to set
/// one).
pub fn claimed_before_bins<'a>(
    delegations: &'a Delegations,
    tag: &str,
) -> Option<&'a DelegatedRole> {
    delegations
        .roles()
        .iter()
        .take_while(|role| !is_explicit_bin(role))
        .find(|role| role.is_delegated_path(tag))
}

/// The body of `POST /v2/{gun}/_trust/tags`: tags to point at new targets
/// and tags to remove, applied together (bins whose key the server holds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagChanges {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, TargetFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl TagChanges {
    /// How many tags it changes.
    pub fn len(&self) -> usize {
        self.set.len() + self.remove.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegation_before_the_bins_claims_its_tags() {
        let role =
            |name: &str, paths: Option<Vec<String>>, prefixes: Option<Vec<String>>| DelegatedRole {
                name: name.into(),
                keyids: vec![],
                threshold: 1,
                terminating: false,
                paths,
                path_hash_prefixes: prefixes,
                extra: Default::default(),
            };
        let delegations = Delegations {
            keys: Default::default(),
            roles: Some(vec![
                role("release", Some(vec!["1.*".into()]), None),
                role("bins-0", None, Some(vec!["0".into()])),
                // After the bins: never consulted for the rule.
                role("late", Some(vec!["*".into()]), None),
            ]),
            succinct_roles: None,
            extra: Default::default(),
        };
        assert_eq!(
            claimed_before_bins(&delegations, "1.5").map(|r| r.name.as_str()),
            Some("release")
        );
        assert!(claimed_before_bins(&delegations, "latest").is_none());
    }

    #[test]
    fn tag_changes_refuse_unknown_fields() {
        let ok: TagChanges = serde_json::from_str(r#"{"remove":["a"]}"#).unwrap();
        assert_eq!(ok.len(), 1);
        assert!(serde_json::from_str::<TagChanges>(r#"{"sett":{}}"#).is_err());
    }
}
