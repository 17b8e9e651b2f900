//! TUF metadata: one small type per role and the generic signed envelope.
//!
//! Every type keeps the fields it does not know in `extra`, so metadata made
//! by newer or other TUF implementations survives a round trip. Signatures are
//! never checked against a re-serialisation: [`Metadata::from_bytes`] keeps
//! the canonical form of `signed` exactly as received.

use crate::canonical::to_canonical_json;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::verify::verify_signatures;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The TUF specification version tagtrust writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// One signature in the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: String,
    pub sig: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What every role has in common; implemented by the four top-level role types.
pub trait Role: Serialize + DeserializeOwned {
    /// The `_type` value and the role's name in URLs and snapshots.
    const TYPE: &'static str;
    fn version(&self) -> u64;
    fn expires(&self) -> DateTime<Utc>;
    fn spec_version(&self) -> &str;
    /// Checks beyond the schema (thresholds >= 1, consistent key lists).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires() <= now
    }
}

/// `expires` in the one form TUF allows: `YYYY-MM-DDTHH:MM:SSZ`.
pub mod expiry {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        if !s.ends_with('Z') {
            return Err(serde::de::Error::custom(format!(
                "expires {s:?} must be UTC ending in 'Z'"
            )));
        }
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("expires {s:?}: {e}")))
    }
}

/// Truncate to whole seconds: the wire form has no fractions, so a value we
/// sign must equal the value a reader parses back.
pub fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("in range")
}

/// The unknown-to-TUF field in `signed` where tagtrust records when it
/// signed a role (UTC, `YYYY-MM-DDTHH:MM:SSZ`). Other TUF clients ignore it;
/// tagtrust's `max_age` policy and `status` read it.
pub const SIGNED_AT_FIELD: &str = "x-tagtrust-signed-at";

/// Record `now` as the signing time in a role's `extra` fields.
pub fn set_signed_at(extra: &mut Map<String, Value>, now: DateTime<Utc>) {
    extra.insert(
        SIGNED_AT_FIELD.to_string(),
        Value::String(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
}

/// The signing time recorded by [`set_signed_at`], if any.
pub fn signed_at(extra: &Map<String, Value>) -> Option<DateTime<Utc>> {
    let text = extra.get(SIGNED_AT_FIELD)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Key IDs and threshold of one role (in root's `roles`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RoleKeys {
    pub fn new(keyids: Vec<String>, threshold: u64) -> Self {
        RoleKeys {
            keyids,
            threshold,
            extra: Map::new(),
        }
    }
}

/// Key IDs are 64 lowercase hex characters (a SHA-256, as every TUF
/// implementation writes them). Anything else is refused at parse, before a
/// key ID can reach a terminal, a file name or a comparison.
pub fn validate_key_id(owner: &str, id: &str) -> Result<()> {
    if id.len() == 64 && crate::hashes::is_lower_hex(id) {
        return Ok(());
    }
    let shown: String = id.chars().take(80).collect();
    Err(Error::Schema {
        role: owner.to_string(),
        reason: format!("key ID {shown:?} is not 64 lowercase hex characters"),
    })
}

fn check_key_ids<'a>(owner: &str, ids: impl IntoIterator<Item = &'a String>) -> Result<()> {
    ids.into_iter()
        .try_for_each(|id| validate_key_id(owner, id))
}

fn check_role_keys(
    role: &str,
    owner: &str,
    keyids: &[String],
    threshold: u64,
    keys: &BTreeMap<String, PublicKey>,
) -> Result<()> {
    let schema = |reason: String| Error::Schema {
        role: owner.to_string(),
        reason,
    };
    if threshold < 1 {
        return Err(schema(format!("role {role} has threshold 0")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in keyids {
        validate_key_id(owner, id)?;
        if !seen.insert(id) {
            return Err(schema(format!("role {role} lists key {id} twice")));
        }
        if !keys.contains_key(id) {
            return Err(schema(format!("role {role} lists unknown key {id}")));
        }
    }
    Ok(())
}

/// The signed part of a role: `_type`, `spec_version`, `version` and
/// `expires`, the role's own fields, and whatever else it carries (`extra`,
/// kept so that signatures over fields this client does not know still
/// verify). Written once for the four roles, with their [`Role`] impl
/// (`checked by`: the checks beyond the schema) and the constructor their
/// `new`s share.
macro_rules! signed_role {
    (
        $(#[$doc:meta])*
        $name:ident = $type_:literal $(, checked by $check:path)? {
            $($(#[$attr:meta])* $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            #[serde(rename = "_type")]
            pub type_: String,
            pub spec_version: String,
            pub version: u64,
            #[serde(with = "expiry")]
            pub expires: DateTime<Utc>,
            $($(#[$attr])* pub $field: $ty,)*
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        impl Role for $name {
            const TYPE: &'static str = $type_;
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> DateTime<Utc> {
                self.expires
            }
            fn spec_version(&self) -> &str {
                &self.spec_version
            }
            $(fn validate(&self) -> Result<()> {
                $check(self)
            })?
        }

        impl $name {
            /// This role at `version`, expiring at `expires` (whole
            /// seconds), with its own fields.
            fn from_parts(version: u64, expires: DateTime<Utc>, $($field: $ty),*) -> Self {
                $name {
                    type_: <Self as Role>::TYPE.into(),
                    spec_version: SPEC_VERSION.into(),
                    version,
                    expires: whole_seconds(expires),
                    $($field,)*
                    extra: Map::new(),
                }
            }
        }
    };
}

signed_role!(
    /// The root role: the keys and thresholds of all top-level roles.
    Root = "root", checked by Root::check {
        consistent_snapshot: bool,
        keys: BTreeMap<String, PublicKey>,
        roles: BTreeMap<String, RoleKeys>,
    }
);

/// The four roles root must define.
pub const TOP_LEVEL_ROLES: [&str; 4] = [
    crate::role::TopLevelRole::Root.as_str(),
    crate::role::TopLevelRole::Targets.as_str(),
    crate::role::TopLevelRole::Snapshot.as_str(),
    crate::role::TopLevelRole::Timestamp.as_str(),
];

impl Root {
    /// Every top-level role defined, with valid key lists and thresholds.
    fn check(&self) -> Result<()> {
        check_key_ids("root", self.keys.keys())?;
        for role in TOP_LEVEL_ROLES {
            let keys = self.roles.get(role).ok_or_else(|| Error::Schema {
                role: "root".into(),
                reason: format!("no {role} role"),
            })?;
            check_role_keys(role, "root", &keys.keyids, keys.threshold, &self.keys)?;
        }
        Ok(())
    }

    /// Version 1, consistent snapshots, no keys yet.
    pub fn new(expires: DateTime<Utc>) -> Self {
        Self::from_parts(1, expires, true, BTreeMap::new(), BTreeMap::new())
    }

    /// The keys and threshold root assigns to a top-level role.
    pub fn role_keys(&self, role: &str) -> Result<&RoleKeys> {
        self.roles.get(role).ok_or_else(|| Error::Schema {
            role: "root".into(),
            reason: format!("no {role} role"),
        })
    }

    /// Is `metadata` signed by a threshold of the keys root gives `role`?
    pub fn verify_role<T: Role>(&self, role: &str, metadata: &Metadata<T>) -> Result<()> {
        let keys = self.role_keys(role)?;
        verify_signatures(
            role,
            metadata.canonical_signed(),
            &metadata.signatures,
            &self.keys,
            &keys.keyids,
            keys.threshold,
        )
    }

    /// The key IDs root gives `role` whose signatures on `metadata` verify
    /// (what [`Root::verify_role`] counts against the threshold).
    pub fn role_signers<T: Role>(&self, role: &str, metadata: &Metadata<T>) -> Result<Vec<String>> {
        let keys = self.role_keys(role)?;
        crate::verify::valid_signers(
            role,
            metadata.canonical_signed(),
            &metadata.signatures,
            &self.keys,
            &keys.keyids,
        )
    }

    /// Add `key` to `role` (and to `keys`).
    pub fn add_key(&mut self, role: &str, key: PublicKey) {
        let id = key.key_id();
        self.keys.insert(id.clone(), key);
        let entry = self
            .roles
            .entry(role.to_string())
            .or_insert_with(|| RoleKeys::new(Vec::new(), 1));
        if !entry.keyids.contains(&id) {
            entry.keyids.push(id);
        }
    }

    /// Make `keys` (and only them) the keys of `role`, dropping keys no role
    /// uses any more. The threshold is kept unless it exceeds the key count.
    pub fn replace_role_keys(&mut self, role: &str, keys: &[PublicKey]) {
        let ids: Vec<String> = keys.iter().map(PublicKey::key_id).collect();
        for key in keys {
            self.keys.insert(key.key_id(), key.clone());
        }
        let entry = self
            .roles
            .entry(role.to_string())
            .or_insert_with(|| RoleKeys::new(Vec::new(), 1));
        entry.threshold = entry.threshold.min(ids.len().max(1) as u64);
        entry.keyids = ids;
        self.prune_keys();
    }

    /// Drop keys no role uses any more.
    pub fn prune_keys(&mut self) {
        let used: std::collections::BTreeSet<&String> =
            self.roles.values().flat_map(|r| r.keyids.iter()).collect();
        self.keys.retain(|id, _| used.contains(id));
    }
}

/// One entry of snapshot's or timestamp's `meta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MetaFile {
    /// An entry describing `bytes` fully: version, length and sha256.
    /// An entry naming only a version (length and hashes are optional in
    /// snapshot meta).
    pub fn version_only(version: u64) -> Self {
        MetaFile {
            version,
            length: None,
            hashes: None,
            extra: Map::new(),
        }
    }

    pub fn describing(version: u64, bytes: &[u8]) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_string(), crate::hashes::sha256_hex(bytes));
        MetaFile {
            version,
            length: Some(bytes.len() as u64),
            hashes: Some(hashes),
            extra: Map::new(),
        }
    }

    /// Check downloaded bytes against the length and hashes, where given.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<()> {
        if let Some(length) = self.length {
            crate::hashes::verify_length(bytes, length)?;
        }
        if let Some(hashes) = &self.hashes {
            crate::hashes::verify_hashes(bytes, hashes)?;
        }
        Ok(())
    }
}

signed_role!(
    /// The timestamp role: version and hash of the current snapshot.
    Timestamp = "timestamp", checked by Timestamp::check {
        meta: BTreeMap<String, MetaFile>,
    }
);

impl Timestamp {
    /// It names a snapshot.
    fn check(&self) -> Result<()> {
        self.snapshot_meta().map(|_| ())
    }

    pub fn new(version: u64, expires: DateTime<Utc>, snapshot: MetaFile) -> Self {
        let meta = [("snapshot.json".to_string(), snapshot)].into();
        Self::from_parts(version, expires, meta)
    }

    pub fn snapshot_meta(&self) -> Result<&MetaFile> {
        self.meta.get("snapshot.json").ok_or_else(|| Error::Schema {
            role: "timestamp".into(),
            reason: "meta has no snapshot.json".into(),
        })
    }
}

signed_role!(
    /// The snapshot role: the versions of targets and every delegated role.
    Snapshot = "snapshot" {
        meta: BTreeMap<String, MetaFile>,
    }
);

impl Snapshot {
    pub fn new(version: u64, expires: DateTime<Utc>, meta: BTreeMap<String, MetaFile>) -> Self {
        Self::from_parts(version, expires, meta)
    }

    /// The entry for a targets role (`targets` or a delegated name).
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        self.meta.get(&format!("{role}.json"))
    }
}

/// One target: for tagtrust, a tag whose hashes and length are the image
/// manifest's digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The media type of a target whose `custom` names none: an OCI image
/// manifest, what `tag set` signs by default.
pub const DEFAULT_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

impl TargetFile {
    /// The `sha256:HEX` digest, if the target has a sha256 hash.
    pub fn digest(&self) -> Option<String> {
        self.hashes.get("sha256").map(|h| format!("sha256:{h}"))
    }

    /// The OCI `mediaType` from `custom`; a target without one is an OCI
    /// image manifest ([`DEFAULT_MEDIA_TYPE`], left implicit so that each
    /// tag costs no more bytes than it must).
    pub fn media_type(&self) -> &str {
        self.custom
            .as_ref()
            .and_then(|c| c.get("mediaType"))
            .and_then(|m| m.as_str())
            .unwrap_or(DEFAULT_MEDIA_TYPE)
    }

    /// Check a downloaded artifact against length and every hash.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<()> {
        crate::hashes::verify_length(bytes, self.length)?;
        crate::hashes::verify_hashes(bytes, &self.hashes)
    }
}

/// One delegated targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    pub name: String,
    pub keyids: Vec<String>,
    pub threshold: u64,
    #[serde(default)]
    pub terminating: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DelegatedRole {
    /// Does this role select targets by the hash of their name alone (a
    /// hashed bin in the explicit `path_hash_prefixes` form)?
    pub fn is_hash_bin(&self) -> bool {
        self.paths.is_none() && self.path_hash_prefixes.is_some()
    }

    /// May this role sign `target`?
    pub fn is_delegated_path(&self, target: &str) -> bool {
        crate::pathmatch::is_delegated_path(
            target,
            self.paths.as_deref(),
            self.path_hash_prefixes.as_deref(),
        )
    }
}

/// TAP 15 succinct hash-bin delegations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    pub keyids: Vec<String>,
    pub threshold: u64,
    pub bit_length: u32,
    pub name_prefix: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SuccinctRoles {
    /// The bin role responsible for `target` (TAP 15).
    pub fn role_for_target(&self, target: &str) -> String {
        self.bin_name(self.bin_for_target(target))
    }

    /// The number of the bin responsible for `target`: the first
    /// `bit_length` bits of the sha256 of its name (TAP 15). Checking a
    /// bin's tags compares these numbers rather than names (a bin of 98
    /// tags made 98 names).
    pub fn bin_for_target(&self, target: &str) -> u64 {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(target.as_bytes());
        let first = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
        let bin = if self.bit_length == 0 {
            0
        } else {
            first >> (32 - self.bit_length)
        };
        u64::from(bin)
    }

    /// The name of bin number `bin`: the prefix, `-`, the number in
    /// zero-padded lower-case hex (TAP 15).
    pub fn bin_name(&self, bin: u64) -> String {
        let width = self.bit_length.div_ceil(4) as usize;
        format!("{}-{:0width$x}", self.name_prefix, bin)
    }

    /// Bin `role` as an explicit delegated role: the same keys and
    /// threshold, terminating, and the `path_hash_prefixes` (hex prefixes
    /// of the target name's sha256) that select exactly the targets
    /// [`Self::role_for_target`] sends to it. `None` when `role` is no bin.
    pub fn as_delegated_role(&self, role: &str) -> Option<DelegatedRole> {
        if !self.is_bin(role) {
            return None;
        }
        let bin = u64::from_str_radix(role.rsplit('-').next()?, 16).ok()?;
        let width = self.bit_length.div_ceil(4);
        // Hex prefixes of `width` digits whose top `bit_length` bits are `bin`.
        let spare = 4 * width - self.bit_length;
        let prefixes = (0..1u64 << spare)
            .map(|low| format!("{:0w$x}", (bin << spare) | low, w = width as usize))
            .collect();
        Some(DelegatedRole {
            name: role.to_string(),
            keyids: self.keyids.clone(),
            threshold: self.threshold,
            terminating: true,
            paths: None,
            path_hash_prefixes: Some(prefixes),
            extra: Map::new(),
        })
    }

    /// Every bin's name, in order.
    pub fn bin_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..1u64 << self.bit_length).map(|bin| self.bin_name(bin))
    }

    /// Is `role` one of the bins (name and number in range)?
    pub fn is_bin(&self, role: &str) -> bool {
        self.bin_number(role).is_some()
    }

    /// The number of bin `role` ([`Self::bin_name`] backwards), if it is
    /// one of these bins: exactly the name `bin_name` gives, lower-case
    /// hex digits of its width (`from_str_radix` alone also takes a `+`
    /// sign and upper case, so `bin-+f` and `bin-0F` passed for `bin-0f`).
    pub fn bin_number(&self, role: &str) -> Option<u64> {
        let suffix = role
            .strip_prefix(&self.name_prefix)
            .and_then(|s| s.strip_prefix('-'))?;
        let width = self.bit_length.div_ceil(4) as usize;
        if suffix.len() != width || !crate::hashes::is_lower_hex(suffix) {
            return None;
        }
        u64::from_str_radix(suffix, 16)
            .ok()
            .filter(|n| *n < (1u64 << self.bit_length))
    }
}

/// The `delegations` object of a targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<String, PublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Delegations {
    pub fn roles(&self) -> &[DelegatedRole] {
        self.roles.as_deref().unwrap_or(&[])
    }

    /// Is `name` a hashed bin delegated here, in either form (a TAP 15
    /// succinct bin, or an explicit role selected by name hash alone)?
    pub fn is_bin(&self, name: &str) -> bool {
        self.succinct_roles.as_ref().is_some_and(|s| s.is_bin(name))
            || self
                .roles()
                .iter()
                .any(|r| r.name == name && r.is_hash_bin())
    }

    /// Key IDs and threshold for a delegated role name, if delegated here.
    pub fn role_keys(&self, name: &str) -> Option<(&[String], u64)> {
        if let Some(role) = self.roles().iter().find(|r| r.name == name) {
            return Some((&role.keyids, role.threshold));
        }
        match &self.succinct_roles {
            Some(s) if s.is_bin(name) => Some((&s.keyids, s.threshold)),
            _ => None,
        }
    }

    /// Is `metadata` signed by a threshold of the keys delegated to `name`?
    pub fn verify_delegate(&self, name: &str, metadata: &Metadata<Targets>) -> Result<()> {
        let (keyids, threshold) = self.role_keys(name).ok_or_else(|| Error::Schema {
            role: name.to_string(),
            reason: "no such delegated role".into(),
        })?;
        verify_signatures(
            name,
            metadata.canonical_signed(),
            &metadata.signatures,
            &self.keys,
            keyids,
            threshold,
        )
    }

    fn validate(&self) -> Result<()> {
        if self.roles.is_some() == self.succinct_roles.is_some() {
            return Err(Error::Schema {
                role: "targets".into(),
                reason: "delegations must have exactly one of roles and succinct_roles".into(),
            });
        }
        check_key_ids("targets", self.keys.keys())?;
        let mut names = std::collections::BTreeSet::new();
        for role in self.roles() {
            // Only emptiness is refused here: other TUF repositories may use
            // '/' in role names (clients percent-encode them). tagtrust's own
            // server and publisher apply `validate_role_name` on top.
            if role.name.is_empty() {
                return Err(Error::InvalidRoleName(String::new()));
            }
            if crate::metadata::TOP_LEVEL_ROLES.contains(&role.name.as_str()) {
                return Err(Error::Schema {
                    role: "targets".into(),
                    reason: format!("delegated role may not be named {}", role.name),
                });
            }
            if !names.insert(&role.name) {
                return Err(Error::Schema {
                    role: "targets".into(),
                    reason: format!("role {} delegated twice", role.name),
                });
            }
            if role.paths.is_some() && role.path_hash_prefixes.is_some() {
                return Err(Error::Schema {
                    role: "targets".into(),
                    reason: format!("role {} has both paths and path_hash_prefixes", role.name),
                });
            }
            check_role_keys(
                &role.name,
                "targets",
                &role.keyids,
                role.threshold,
                &self.keys,
            )?;
        }
        if let Some(s) = &self.succinct_roles {
            if !(1..=32).contains(&s.bit_length) {
                return Err(Error::Schema {
                    role: "targets".into(),
                    reason: "succinct_roles bit_length must be 1..=32".into(),
                });
            }
            check_role_keys(
                &s.name_prefix,
                "targets",
                &s.keyids,
                s.threshold,
                &self.keys,
            )?;
        }
        Ok(())
    }
}

signed_role!(
    /// The targets role (top-level or delegated): tags and their digests.
    Targets = "targets", checked by Targets::check {
        targets: BTreeMap<String, TargetFile>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delegations: Option<Delegations>,
    }
);

impl Targets {
    /// Its delegations, if any, are valid.
    fn check(&self) -> Result<()> {
        match &self.delegations {
            Some(d) => d.validate(),
            None => Ok(()),
        }
    }

    pub fn new(version: u64, expires: DateTime<Utc>) -> Self {
        Self::from_parts(version, expires, BTreeMap::new(), None)
    }
}

/// The signed envelope: `{"signatures": [...], "signed": {...}}`.
#[derive(Debug, Clone)]
pub struct Metadata<T> {
    pub signed: T,
    pub signatures: Vec<Signature>,
    /// Canonical JSON of `signed` as received: what signatures cover.
    canonical_signed: Vec<u8>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    signatures: Vec<Signature>,
    signed: Value,
}

impl<T: Role> Metadata<T> {
    /// Parse metadata bytes. Checks the schema (including `_type` and a 1.x
    /// `spec_version`) but not signatures or expiry: that is the caller's
    /// job, with the right delegator.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let raw: RawEnvelope = serde_json::from_slice(bytes)?;
        let found = raw
            .signed
            .get("_type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if found != T::TYPE {
            return Err(Error::WrongType {
                expected: T::TYPE.into(),
                found,
            });
        }
        check_key_ids(T::TYPE, raw.signatures.iter().map(|s| &s.keyid))?;
        // What is parsed must be what is signed (see `canonical_signed`).
        let canonical_signed = crate::canonical::canonical_signed(&raw.signed)?;
        // `to_bytes` writes signatures canonically: refuse what it cannot
        // write (floats in a signature's unknown fields) here, not there.
        to_canonical_json(&raw.signatures)?;
        let signed: T = serde_json::from_value(raw.signed).map_err(|e| Error::Schema {
            role: T::TYPE.into(),
            reason: e.to_string(),
        })?;
        if signed.spec_version().split('.').next() != Some("1") {
            return Err(Error::SpecVersion(signed.spec_version().to_string()));
        }
        if signed.version() < 1 {
            return Err(Error::Schema {
                role: T::TYPE.into(),
                reason: "version must be at least 1".into(),
            });
        }
        signed.validate()?;
        Ok(Metadata {
            signed,
            signatures: raw.signatures,
            canonical_signed,
        })
    }

    /// Unsigned metadata wrapping `signed`, ready for [`Metadata::sign`].
    pub fn new(signed: T) -> Result<Self> {
        let canonical_signed = to_canonical_json(&signed)?;
        Ok(Metadata {
            signed,
            signatures: Vec::new(),
            canonical_signed,
        })
    }

    /// The bytes signatures cover.
    pub fn canonical_signed(&self) -> &[u8] {
        &self.canonical_signed
    }

    /// Add (or replace) `key`'s signature.
    pub fn sign(&mut self, key: &impl crate::keys::TufSigner) {
        let sig = key.sign_tuf(&self.canonical_signed);
        self.signatures.retain(|s| s.keyid != sig.keyid);
        self.signatures.push(sig);
    }

    /// The envelope as canonical JSON: what tagtrust uploads and stores.
    /// Control characters in strings (a PEM key's newlines), which canonical
    /// JSON leaves raw and JSON parsers refuse, are written as `\u00XX`, so
    /// the bytes parse back to the same canonical `signed`.
    pub fn to_bytes(&self) -> Vec<u8> {
        // `signed` must be written exactly as it was signed: its canonical
        // bytes, not a re-serialisation of `self.signed`, which a caller may
        // have mutated after signing. The canonical envelope is its two
        // members in key order, each in canonical form.
        let signatures = to_canonical_json(&self.signatures)
            .expect("no floats in signatures (checked at parse)");
        let mut out = Vec::with_capacity(signatures.len() + self.canonical_signed.len() + 32);
        out.extend_from_slice(br#"{"signatures":"#);
        escape_controls(&signatures, &mut out);
        out.extend_from_slice(br#","signed":"#);
        escape_controls(&self.canonical_signed, &mut out);
        out.push(b'}');
        out
    }
}

/// `canonical` with each byte below 0x20 written `\u00XX`. Canonical JSON
/// has no whitespace outside strings and UTF-8 has no byte below 0x20 in
/// a multi-byte character: every such byte is a raw control character
/// inside a string. (Copied in runs: a targets file has none, or few.)
fn escape_controls(canonical: &[u8], out: &mut Vec<u8>) {
    let mut rest = canonical;
    while let Some(at) = rest.iter().position(|&b| b < 0x20) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(format!("\\u{:04x}", rest[at]).as_bytes());
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    use crate::keys::SigningKey;

    fn signed_root() -> (Metadata<Root>, SigningKey) {
        let key = SigningKey::generate();
        let mut root = Root::new(Utc::now() + Duration::days(1));
        for role in TOP_LEVEL_ROLES {
            root.add_key(role, key.public_key());
        }
        let mut md = Metadata::new(root).unwrap();
        md.sign(&key);
        (md, key)
    }

    #[test]
    fn round_trip_keeps_signature_valid() {
        let (md, _) = signed_root();
        let back = Metadata::<Root>::from_bytes(&md.to_bytes()).unwrap();
        back.signed.verify_role("root", &back).unwrap();
    }

    #[test]
    fn unknown_fields_are_signed_over() {
        let (md, key) = signed_root();
        let mut v: Value = serde_json::from_slice(&md.to_bytes()).unwrap();
        v["signed"]["x-custom"] = serde_json::json!({"a": 1});
        // Re-sign over the canonical form with the unknown field.
        let canonical = to_canonical_json(&v["signed"]).unwrap();
        v["signatures"] = serde_json::json!([key.sign(&canonical)]);
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        let md = Metadata::<Root>::from_bytes(&bytes).unwrap();
        md.signed.verify_role("root", &md).unwrap();
        // And tampering with the unknown field breaks the signature.
        v["signed"]["x-custom"]["a"] = serde_json::json!(2);
        let md = Metadata::<Root>::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(md.signed.verify_role("root", &md).is_err());
    }

    /// Canonical JSON writes strings in Unicode NFC, so a string not in
    /// NFC is signed as another one, and two keys of one object that NFC
    /// makes equal are signed as one of them: here U+212A KELVIN SIGN,
    /// which NFC writes `K`. A forged `K1` beside the signed entry moved
    /// under `\u{212a}1` is not covered by the signature (the canonical
    /// form keeps the later key), yet it is what a lookup of `K1` finds.
    #[test]
    fn keys_equal_after_nfc_are_refused() {
        let (_, key) = signed_root();
        let mut targets = Targets::new(1, Utc::now() + Duration::days(1));
        targets.targets.insert(
            "K1".into(),
            TargetFile {
                length: 1,
                hashes: [("sha256".to_string(), "00".repeat(32))].into(),
                custom: None,
                extra: Default::default(),
            },
        );
        let mut md = Metadata::new(targets).unwrap();
        md.sign(&key);
        let mut v: Value = serde_json::from_slice(&md.to_bytes()).unwrap();
        let signed_entry = v["signed"]["targets"]["K1"].clone();
        v["signed"]["targets"]["\u{212a}1"] = signed_entry;
        v["signed"]["targets"]["K1"]["length"] = serde_json::json!(2);
        let forged = serde_json::to_vec(&v).unwrap();
        // The forgery canonicalises to exactly what was signed.
        let signed = crate::canonical::canonical_value(&v["signed"]).unwrap();
        assert_eq!(signed, md.canonical_signed());
        assert!(matches!(
            Metadata::<Targets>::from_bytes(&forged),
            Err(Error::Canonical(_))
        ));
        // A string value not in NFC is refused too; NFC ones still parse.
        let mut v: Value = serde_json::from_slice(&md.to_bytes()).unwrap();
        v["signed"]["x-note"] = serde_json::json!("cafe\u{301}");
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(Metadata::<Targets>::from_bytes(&bytes).is_err());
        v["signed"]["x-note"] = serde_json::json!("caf\u{e9}");
        let bytes = serde_json::to_vec(&v).unwrap();
        Metadata::<Targets>::from_bytes(&bytes).unwrap();
    }

    #[test]
    fn wrong_type_is_refused() {
        let (md, _) = signed_root();
        assert!(matches!(
            Metadata::<Targets>::from_bytes(&md.to_bytes()),
            Err(Error::WrongType { .. })
        ));
    }

    #[test]
    fn zero_threshold_is_refused() {
        let (md, key) = signed_root();
        let mut root = md.signed.clone();
        root.roles.get_mut("targets").unwrap().threshold = 0;
        let mut md = Metadata::new(root).unwrap();
        md.sign(&key);
        assert!(Metadata::<Root>::from_bytes(&md.to_bytes()).is_err());
    }

    /// Found by the `metadata_parse` fuzz target (fuzz/, seed
    /// `root-ecdsa-rsa-keys.json`): `to_bytes` panicked on any string with a
    /// control character in `signed`, such as a PEM public key's newlines,
    /// because canonical JSON writes them raw and its re-parse refused them.
    #[test]
    fn control_characters_round_trip_through_to_bytes() {
        let (md, key) = signed_root();
        let mut root = md.signed.clone();
        root.extra.insert(
            "x-pem".into(),
            Value::String("-----BEGIN\nline\r\t\u{1}\u{1f}é\n".into()),
        );
        let mut md = Metadata::new(root).unwrap();
        md.sign(&key);
        let bytes = md.to_bytes();
        assert!(!bytes.iter().any(|b| *b < 0x20), "control bytes escaped");
        let back = Metadata::<Root>::from_bytes(&bytes).unwrap();
        assert_eq!(back.canonical_signed(), md.canonical_signed());
        back.signed.verify_role("root", &back).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        // Without control characters the envelope is exactly canonical JSON.
        let (plain, _) = signed_root();
        let v: Value = serde_json::from_slice(&plain.to_bytes()).unwrap();
        assert_eq!(plain.to_bytes(), to_canonical_json(&v).unwrap());
    }

    /// Found writing the `metadata_parse` fuzz target (fuzz/; its round-trip
    /// property): a float in a signature's unknown fields parsed, then made
    /// `to_bytes` panic (canonical JSON has no floats). Refused at parse.
    #[test]
    fn float_in_a_signature_is_refused_at_parse() {
        let (md, _) = signed_root();
        let mut v: Value = serde_json::from_slice(&md.to_bytes()).unwrap();
        v["signatures"][0]["x-weight"] = serde_json::json!(0.5);
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            Metadata::<Root>::from_bytes(&bytes),
            Err(Error::Canonical(_))
        ));
    }

    #[test]
    fn key_ids_must_be_64_lowercase_hex() {
        validate_key_id("root", &"0a".repeat(32)).unwrap();
        for bad in [
            "0A".repeat(32),
            "0a".repeat(31),
            "0a".repeat(33),
            format!("{}\r\u{1b}[2K", "0a".repeat(31)),
            "alias".into(),
            String::new(),
        ] {
            assert!(validate_key_id("root", &bad).is_err(), "{bad:?}");
        }
        let (md, key) = signed_root();
        let id = key.key_id();
        let bad_id = format!("{}\r\u{1b}[2K", &id[..60]);
        // In root's keys and roles, in a signature, in delegations.
        let mut v: Value = serde_json::from_slice(&md.to_bytes()).unwrap();
        let renamed = serde_json::to_string(&v["signed"])
            .unwrap()
            .replace(&id, &id.to_uppercase());
        v["signed"] = serde_json::from_str(&renamed).unwrap();
        assert!(Metadata::<Root>::from_bytes(&serde_json::to_vec(&v).unwrap()).is_err());
        let mut v: Value = serde_json::from_slice(&md.to_bytes()).unwrap();
        v["signatures"][0]["keyid"] = Value::String(bad_id.clone());
        let err = Metadata::<Root>::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("64 lowercase hex"), "{err}");
        let mut targets = Targets::new(1, Utc::now() + Duration::days(1));
        targets.delegations = Some(Delegations {
            keys: [(bad_id.clone(), key.public_key())].into_iter().collect(),
            roles: Some(vec![DelegatedRole {
                name: "robot".into(),
                keyids: vec![bad_id],
                threshold: 1,
                terminating: false,
                paths: Some(vec!["*".into()]),
                path_hash_prefixes: None,
                extra: Map::new(),
            }]),
            succinct_roles: None,
            extra: Map::new(),
        });
        let mut md = Metadata::new(targets).unwrap();
        md.sign(&key);
        assert!(Metadata::<Targets>::from_bytes(&md.to_bytes()).is_err());
    }

    #[test]
    fn succinct_bins() {
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: 1,
            bit_length: 8,
            name_prefix: "bin".into(),
            extra: Map::new(),
        };
        let name = s.role_for_target("latest");
        assert!(s.is_bin(&name), "{name}");
        assert_eq!(name.len(), "bin-".len() + 2);
        assert!(!s.is_bin("bin-100"));
        let names: Vec<String> = s.bin_names().collect();
        assert_eq!(names.len(), 256);
        assert_eq!(
            (names[0].as_str(), names[255].as_str()),
            ("bin-00", "bin-ff")
        );
        assert!(names.iter().all(|n| s.is_bin(n)));
        assert!(names.contains(&name));
        // Numbers and names are one another's inverse, and a target's bin
        // number names its bin.
        for (number, name) in names.iter().enumerate() {
            assert_eq!(s.bin_number(name), Some(number as u64));
            assert_eq!(s.bin_name(number as u64), *name);
        }
        assert_eq!(s.bin_name(s.bin_for_target("latest")), name);
        for stray in [
            "bin-100", "bin-0", "bin-0g", "bins-00", "bin00", "bin-+f", "bin-0F",
        ] {
            assert_eq!(s.bin_number(stray), None, "{stray}");
        }
        // As explicit roles, the bins' hash prefixes select what
        // role_for_target selects, for a bit length that is not a multiple
        // of 4 too.
        for bit_length in [1, 3, 4, 6, 8] {
            let s = SuccinctRoles {
                bit_length,
                ..s.clone()
            };
            let roles: Vec<DelegatedRole> = s
                .bin_names()
                .map(|n| s.as_delegated_role(&n).unwrap())
                .collect();
            for n in 0..200 {
                let target = format!("tag{n}");
                let holders: Vec<&str> = roles
                    .iter()
                    .filter(|r| r.is_delegated_path(&target))
                    .map(|r| r.name.as_str())
                    .collect();
                assert_eq!(
                    holders,
                    [s.role_for_target(&target)],
                    "{bit_length} {target}"
                );
            }
        }
        assert_eq!(s.as_delegated_role("other-00"), None);
    }
}
