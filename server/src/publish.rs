//! Publish validation: given the repository's current metadata
//! ([`CurrentRepository`], plain domain values) and the uploaded files,
//! decide what may be stored ([`Plan`]), or why not ([`Refusal`]). Pure (no
//! I/O, no HTTP, no storage types): the route converts its rows into a
//! [`CurrentRepository`], holds the repository lock around [`plan`] and
//! turns a [`Refusal`] into its HTTP answer. Every signature check goes
//! through `tagtrust_shared` (`Root::verify_role`, `Delegations::verify_delegate`).

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use tagtrust_shared::metadata::Role;
use tagtrust_shared::succession::{verify_root, RootKeys};
use tagtrust_shared::{
    DelegatedRole, Delegations, MetaFile, Metadata, Root, SuccinctRoles, Targets, TopLevelRole,
};

pub mod notary;
pub mod server_bins;
#[cfg(test)]
pub(crate) mod tests;

/// The name of the role root is.
const ROOT: &str = TopLevelRole::Root.as_str();
/// The name of the top-level targets role, where every delegation starts.
const TARGETS: &str = TopLevelRole::Targets.as_str();

/// One uploaded file: role name (without `.json`) and exact bytes.
#[derive(Debug, Clone)]
pub struct Upload {
    pub role: String,
    pub bytes: Vec<u8>,
}

/// A stored targets role (top-level or delegated): parsed, with its exact bytes.
#[derive(Debug, Clone)]
pub struct CurrentRole {
    pub metadata: Metadata<Targets>,
    pub bytes: Vec<u8>,
}

/// The repository's current metadata as [`plan`] needs it. Empty (the
/// default) for a repository never published.
#[derive(Debug, Clone, Default)]
pub struct CurrentRepository {
    pub root: Option<Metadata<Root>>,
    /// Targets and delegated roles by name.
    pub roles: BTreeMap<String, CurrentRole>,
    /// Hashed bins of the stored top-level targets' succinct delegation
    /// that the publish does not read (see [`unread_bins`]). Empty when
    /// every role was read.
    pub unread_bins: UnreadBins,
    pub snapshot_version: Option<u64>,
    pub timestamp_version: Option<u64>,
}

/// The hashed bins a publish leaves unread ([`unread_bins`]), as the
/// current snapshot lists them: its `meta` entries by file name
/// (`bins-0a.json`), by version only. Held in that form so that [`plan`]
/// starts the new snapshot's `meta` from them and changes only the entries
/// of the roles it read or was given: taking the 1,024 bins apart into
/// (role, version) and building their entries again was about a tenth of a
/// binned publish (BENCHMARKS.md, 2026-12-07).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnreadBins(BTreeMap<String, MetaFile>);

impl UnreadBins {
    /// The listed version of the bin `role`, if it is one of these. (Each
    /// lookup makes the file name: a publish asks once per uploaded role.)
    pub fn version(&self, role: &str) -> Option<u64> {
        self.0.get(&file_name(role)).map(|entry| entry.version)
    }

    pub fn contains(&self, role: &str) -> bool {
        self.0.contains_key(&file_name(role))
    }

    /// Read `role` after all: it is no longer left unread.
    pub fn remove(&mut self, role: &str) {
        self.0.remove(&file_name(role));
    }

    /// The bins' role names, in order.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.0.keys().filter_map(|name| name.strip_suffix(".json"))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A stored file that does not parse (the store is corrupt, not the upload).
#[derive(Debug, thiserror::Error)]
#[error("stored {role} does not parse: {reason}")]
pub struct CorruptFile {
    pub role: String,
    pub reason: String,
}

impl CurrentRepository {
    /// Build from the current files as (role, version, exact bytes).
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, u64, &'a [u8])>,
    ) -> Result<Self, CorruptFile> {
        let mut current = CurrentRepository::default();
        current.add_files(files)?;
        Ok(current)
    }

    /// Add current files as (role, version, exact bytes), replacing what
    /// is held of their roles.
    pub fn add_files<'a>(
        &mut self,
        files: impl IntoIterator<Item = (&'a str, u64, &'a [u8])>,
    ) -> Result<(), CorruptFile> {
        let current = self;
        for (role, version, bytes) in files {
            let corrupt = |e: tagtrust_shared::Error| CorruptFile {
                role: role.to_string(),
                reason: format!("{role}: {e}"),
            };
            match TopLevelRole::parse(role) {
                Some(TopLevelRole::Root) => {
                    current.root = Some(Metadata::from_bytes(bytes).map_err(corrupt)?)
                }
                Some(TopLevelRole::Snapshot) => current.snapshot_version = Some(version),
                Some(TopLevelRole::Timestamp) => current.timestamp_version = Some(version),
                Some(TopLevelRole::Targets) | None => {
                    let metadata = Metadata::from_bytes(bytes).map_err(corrupt)?;
                    current.roles.insert(
                        role.to_string(),
                        CurrentRole {
                            metadata,
                            bytes: bytes.to_vec(),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Explicitly delegated role names, by any role read: a bin named so
    /// must be read too (see [`unread_bins`]).
    pub fn explicitly_delegated(&self) -> BTreeSet<&str> {
        self.roles
            .values()
            .filter_map(|r| r.metadata.signed.delegations.as_ref())
            .flat_map(|d| d.roles().iter().map(|role| role.name.as_str()))
            .collect()
    }

    /// The unread bins some role read names explicitly: to read after all.
    pub fn named_unread_bins(&self) -> Vec<String> {
        self.explicitly_delegated()
            .into_iter()
            .filter(|name| self.unread_bins.contains(name))
            .map(str::to_string)
            .collect()
    }
}

/// Take out of `listing` (the current snapshot's `meta` entries by file
/// name) the entries of the roles a publish of `uploads` need not read
/// (moved, not copied: a repository of 1,024 bins lists them all),
/// because nothing their content says can change its [`plan`]: the hashed
/// bins of the stored top-level `targets`'
/// succinct delegation, uploaded or not. [`plan`] reads a stored role's
/// content only to walk the delegation graph (which follows explicitly
/// named roles, never succinct bins: the caller reads any bin that is also
/// explicitly delegated, [`CurrentRepository::explicitly_delegated`]) and
/// to describe it in the new snapshot (bins are listed by version only);
/// an uploaded bin replaces the stored one in both, and its version is
/// checked against the listed one (at 100,000 tags in 1,024 bins, parsing
/// the stored copy of the bin being replaced was ~100 µs of a tag change).
/// When targets itself is uploaded its delegations may change (re-binning;
/// bins the server creates from the old targets' tags), so every role is
/// read: the answer is empty. So a tag change in a repository of 1,024
/// bins reads root and targets, not 11 MB.
pub fn unread_bins(
    targets: &Metadata<Targets>,
    listing: &mut BTreeMap<String, MetaFile>,
    uploads: &[Upload],
) -> UnreadBins {
    let Some(bins) = targets
        .signed
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.as_ref())
    else {
        return UnreadBins::default();
    };
    if uploads.iter().any(|u| u.role == TARGETS) {
        return UnreadBins::default();
    }
    let is_bin = |name: &str| name.strip_suffix(".json").is_some_and(|r| bins.is_bin(r));
    // The few entries that are not bins move back into `listing`; the
    // bins stay in the map they came in, each entry by version only (as
    // `plan` lists a bin).
    let mut unread = std::mem::take(listing);
    listing.extend(unread.extract_if(.., |name, _| !is_bin(name)));
    for entry in unread.values_mut() {
        if entry.length.is_some() || entry.hashes.is_some() || !entry.extra.is_empty() {
            *entry = MetaFile::version_only(entry.version);
        }
    }
    UnreadBins(unread)
}

/// The snapshot `meta` name of `role`'s file.
fn file_name(role: &str) -> String {
    let mut name = String::with_capacity(role.len() + 5);
    name.push_str(role);
    name.push_str(".json");
    name
}

/// Which check refused an upload. Each has its own code (the API's JSON
/// `code`, see [`Check::code`]) and carries what the answer's detail names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The file name is not a valid role name.
    RoleName,
    /// An online role (signed by the server) was uploaded.
    NotUploadable,
    /// One role uploaded twice in one publish.
    DuplicateUpload,
    /// The file does not parse as metadata of its role's type.
    Malformed,
    /// Not signed by a threshold of the keys that must sign it.
    Signature,
    /// The version skips versions (not newer is a [`Refusal::Conflict`]).
    Version {
        current: u64,
        uploaded: u64,
    },
    /// Already expired.
    Expired,
    /// A first publish without root or targets.
    Missing,
    /// No reachable role delegates this role.
    UnknownRole,
    /// The uploaded role is delegated by more than one role.
    DelegatedTwice,
    /// After this publish, `delegated` would be delegated by more than one
    /// role, one of them the uploaded role named by the refusal.
    AmbiguousDelegation {
        delegated: String,
        delegators: Vec<String>,
    },
    /// A target outside the paths delegated to the role.
    PathNotDelegated {
        target: String,
    },
    /// A target name that is not an OCI tag.
    TargetName {
        target: String,
    },
    /// One key listed under two key IDs.
    DuplicateKey {
        key_ids: [String; 2],
    },
    /// Server-held bins delegated in a way the server will not sign for
    /// ([`server_bins`]).
    ServerBins,
    /// A tag change for a repository whose bins the server does not hold.
    NotServerHeld,
    /// A tag change with none, or more than the limit.
    NoChanges,
    TooManyChanges {
        limit: usize,
    },
    /// A target entry the server will not sign (digest, length, fields).
    InvalidTarget {
        target: String,
    },
    /// A tag that the top-level targets or a delegation listed before the
    /// bins takes, so a bin's copy would never be found.
    TagClaimed {
        target: String,
    },
    /// A tag changed twice in one request.
    DuplicateTag {
        target: String,
    },
    /// Removing a tag that is not there.
    UnknownTag {
        target: String,
    },
    /// A file of the other metadata dialect (spec TUF or Notary v1) than
    /// the repository's.
    WrongDialect,
    /// A Notary root whose root keys have no valid certificate for the GUN.
    Certificate,
}

impl Check {
    /// The machine-readable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Check::RoleName => "INVALID_ROLE",
            Check::NotUploadable => "ROLE_NOT_UPLOADABLE",
            Check::DuplicateUpload => "DUPLICATE_ROLE",
            Check::Malformed => "MALFORMED_METADATA",
            Check::Signature => "SIGNATURE",
            Check::Version { .. } => "VERSION",
            Check::Expired => "EXPIRED",
            Check::Missing => "MISSING_ROLE",
            Check::UnknownRole => "UNKNOWN_ROLE",
            Check::DelegatedTwice | Check::AmbiguousDelegation { .. } => "AMBIGUOUS_DELEGATION",
            Check::PathNotDelegated { .. } => "PATH_NOT_DELEGATED",
            Check::TargetName { .. } => "INVALID_TARGET_NAME",
            Check::DuplicateKey { .. } => "DUPLICATE_KEY",
            Check::WrongDialect => "WRONG_DIALECT",
            Check::Certificate => "CERTIFICATE",
            Check::ServerBins => "SERVER_BINS",
            Check::NotServerHeld => "BINS_NOT_SERVER_HELD",
            Check::NoChanges => "NO_CHANGES",
            Check::TooManyChanges { .. } => "TOO_MANY_CHANGES",
            Check::InvalidTarget { .. } => "INVALID_TARGET",
            Check::TagClaimed { .. } => "TAG_CLAIMED",
            Check::DuplicateTag { .. } => "DUPLICATE_TAG",
            Check::UnknownTag { .. } => "UNKNOWN_TAG",
        }
    }
}

/// Why a publish is refused (nothing is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The upload is not newer than the current version: the publisher is
    /// behind and should re-fetch and retry.
    #[error("{reason}")]
    Conflict {
        role: String,
        current_version: u64,
        reason: String,
    },
    /// `role` fails `check`.
    #[error("{reason}")]
    Invalid {
        role: String,
        check: Check,
        reason: String,
    },
    /// No files were uploaded.
    #[error("no metadata files uploaded (multipart field \"files\", filename = role name)")]
    NoFiles,
}

impl Refusal {
    pub(crate) fn invalid(role: &str, check: Check, reason: impl Into<String>) -> Self {
        Refusal::Invalid {
            role: role.to_string(),
            check,
            reason: reason.into(),
        }
    }
}

/// What a valid publish stores, before the server signs snapshot and timestamp.
#[derive(Debug)]
pub struct Plan {
    /// Uploaded roles to store, with their versions (exact bytes).
    pub store: Vec<(String, u64, Vec<u8>)>,
    /// The root that will be current after the publish.
    pub root: Metadata<Root>,
    /// The new snapshot's `meta`.
    pub snapshot_meta: BTreeMap<String, MetaFile>,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    /// The uploaded targets roles of `store`, parsed.
    pub parsed: BTreeMap<String, Metadata<Targets>>,
}

/// Refuse JSON nested deeper than `max` before any parser sees it (serde's
/// own limit of 128 is a stack guard, not a policy). Counts `[` and `{`
/// outside strings; cheap and allocation-free.
pub fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// An uploaded part's filename as a role name, in either dialect (the
/// repository's dialect is known only under its lock; the plan of that
/// dialect then checks the name again: [`role_from_filename`] for spec TUF).
pub fn upload_name(filename: &str) -> Result<String, Refusal> {
    let role = filename.strip_suffix(".json").unwrap_or(filename);
    if notary::is_role_name(role) {
        return Ok(role.to_string());
    }
    role_from_filename(filename)
}

/// Normalise an uploaded part's filename to a role name and check it.
pub fn role_from_filename(filename: &str) -> Result<String, Refusal> {
    let role = filename.strip_suffix(".json").unwrap_or(filename);
    tagtrust_shared::pathmatch::validate_role_name(role).map_err(|e| {
        Refusal::invalid(
            &role.chars().take(300).collect::<String>(),
            Check::RoleName,
            e.to_string(),
        )
    })?;
    if TopLevelRole::is_online_name(role) {
        return Err(not_uploadable(role));
    }
    Ok(role.to_string())
}

fn not_uploadable(role: &str) -> Refusal {
    Refusal::invalid(
        role,
        Check::NotUploadable,
        format!("{role} is signed by the server and cannot be uploaded"),
    )
}

fn parse<T: Role>(role: &str, bytes: &[u8]) -> Result<Metadata<T>, Refusal> {
    Metadata::<T>::from_bytes(bytes)
        .map_err(|e| Refusal::invalid(role, Check::Malformed, format!("{role}: {e}")))
}

fn signature_error(role: &str, e: tagtrust_shared::Error) -> Refusal {
    Refusal::invalid(role, Check::Signature, format!("{role}: {e}"))
}

/// Version must be exactly `current + 1` (1 for a new role). Not newer than
/// current means the publisher is behind: 409, re-fetch and retry.
fn check_version(role: &str, uploaded: u64, current: Option<u64>) -> Result<(), Refusal> {
    check_newer(role, uploaded, current)?;
    let current_version = current.unwrap_or(0);
    if uploaded != current_version + 1 {
        return Err(Refusal::invalid(
            role,
            Check::Version {
                current: current_version,
                uploaded,
            },
            format!(
                "{role} version {uploaded} skips versions: the next version must be {}",
                current_version + 1
            ),
        ));
    }
    Ok(())
}

/// A delegated role's version must only be newer: it may skip versions,
/// because a re-rooted mirror stores an upstream's targets (and its
/// delegated roles) verbatim as delegated roles, at the upstream's
/// versions, and imports only now and then. TUF clients need no more than
/// that (no version of a role ever goes down); the server-signed and
/// top-level roles keep their exact +1.
fn check_newer(role: &str, uploaded: u64, current: Option<u64>) -> Result<(), Refusal> {
    let current_version = current.unwrap_or(0);
    if uploaded <= current_version {
        return Err(Refusal::Conflict {
            role: role.to_string(),
            current_version,
            reason: format!(
                "{role} version {uploaded} is not newer than the current version {current_version}; \
                 fetch the current metadata and publish version {}",
                current_version + 1
            ),
        });
    }
    Ok(())
}

fn check_expiry(role: &str, expires: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if expires <= now {
        return Err(Refusal::invalid(
            role,
            Check::Expired,
            format!("{role} expired at {expires}"),
        ));
    }
    Ok(())
}

/// One step of a delegation chain from top-level targets to a role.
#[derive(Clone)]
enum Hop {
    Role(DelegatedRole),
    /// Bin number `.1` of these bins.
    Bin(SuccinctRoles, u64),
}

impl Hop {
    fn allows(&self, target: &str) -> bool {
        match self {
            Hop::Role(role) => role.is_delegated_path(target),
            Hop::Bin(bins, number) => bins.bin_for_target(target) == *number,
        }
    }
}

/// Walk the delegation graph the way clients search it: from top-level
/// targets through the (effective) delegated roles that their delegators
/// still vouch for, depth first in listed order, each role visited once.
/// `visit` sees each visited role's name, its delegations and the chain of
/// delegations that led to it.
fn walk(
    effective: &BTreeMap<String, Metadata<Targets>>,
    mut visit: impl FnMut(&str, &Delegations, &[Hop]),
) {
    let mut stack = vec![(TARGETS.to_string(), Vec::<Hop>::new())];
    let mut visited = BTreeSet::new();
    while let Some((role, hops)) = stack.pop() {
        if !visited.insert(role.clone()) {
            continue;
        }
        let Some(delegations) = effective
            .get(&role)
            .and_then(|m| m.signed.delegations.as_ref())
        else {
            continue;
        };
        visit(&role, delegations, &hops);
        for child in delegations.roles().iter().rev() {
            // Only a child whose stored metadata its delegator still vouches
            // for can pass delegations on: a stale role signed by a
            // rotated-out key authorises nothing.
            let vouched = effective
                .get(&child.name)
                .is_some_and(|md| delegations.verify_delegate(&child.name, md).is_ok());
            if vouched {
                let mut chain = hops.clone();
                chain.push(Hop::Role(child.clone()));
                stack.push((child.name.clone(), chain));
            }
        }
    }
}

/// Find every role that delegates `name` ([`walk`]). Returns each
/// delegator's name with the chain of delegations leading to `name` (every
/// hop must allow each target).
fn find_delegators(
    effective: &BTreeMap<String, Metadata<Targets>>,
    name: &str,
) -> Vec<(String, Vec<Hop>)> {
    let mut found = Vec::new();
    walk(effective, |role, delegations, hops| {
        for child in delegations.roles() {
            if child.name == name {
                let mut chain = hops.to_vec();
                chain.push(Hop::Role(child.clone()));
                found.push((role.to_string(), chain));
            }
        }
        if let Some(bins) = &delegations.succinct_roles {
            if let Some(number) = bins.bin_number(name) {
                let mut chain = hops.to_vec();
                chain.push(Hop::Bin(bins.clone(), number));
                found.push((role.to_string(), chain));
            }
        }
    });
    found
}

/// Refuse a publish after which some role name would be delegated by two
/// reachable roles, when one of them is being uploaded: a delegated role may
/// affect only names inside its own delegation, so a robot cannot claim a
/// sibling's name (and lock the sibling out, since its publishes would be
/// ambiguous) by delegating it from its own role. Explicit names clash with
/// each other and with another role's hash bins; two bin sets clash when
/// they share a name prefix and a bin width.
fn check_unique_delegations(
    effective: &BTreeMap<String, Metadata<Targets>>,
    uploaded: &BTreeSet<String>,
) -> Result<(), Refusal> {
    let mut explicit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bins: Vec<(String, SuccinctRoles)> = Vec::new();
    walk(effective, |role, delegations, _| {
        for child in delegations.roles() {
            explicit
                .entry(child.name.clone())
                .or_default()
                .push(role.to_string());
        }
        if let Some(s) = &delegations.succinct_roles {
            bins.push((role.to_string(), s.clone()));
        }
    });
    let mut clashes: Vec<(String, Vec<String>)> = Vec::new();
    for (name, delegators) in &explicit {
        let mut all = delegators.clone();
        all.extend(
            bins.iter()
                .filter(|(_, s)| s.is_bin(name))
                .map(|(d, _)| d.clone()),
        );
        if all.len() > 1 {
            clashes.push((name.clone(), all));
        }
    }
    for (i, (a, sa)) in bins.iter().enumerate() {
        for (b, sb) in &bins[i + 1..] {
            if sa.name_prefix == sb.name_prefix
                && sa.bit_length.div_ceil(4) == sb.bit_length.div_ceil(4)
            {
                clashes.push((format!("{}-*", sa.name_prefix), vec![a.clone(), b.clone()]));
            }
        }
    }
    for (name, delegators) in clashes {
        let Some(culprit) = delegators.iter().find(|d| uploaded.contains(*d)).cloned() else {
            // Already so before this publish, and nothing uploaded adds to it.
            continue;
        };
        let shown: String = name.chars().take(300).collect();
        return Err(Refusal::invalid(
            &culprit,
            Check::AmbiguousDelegation {
                delegated: shown.clone(),
                delegators: delegators.clone(),
            },
            format!(
                "{culprit} may not delegate {shown:?}: that name would be delegated by more than one role ({}); \
                 a delegated role may affect only names inside its own delegation, and delegated role names must be unique",
                delegators.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Refuse target names that are not OCI tags (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`):
/// a tagtrust repository's targets are image tags, and a name with control
/// characters or separators could forge lines where tags are listed.
fn check_target_names(role: &str, md: &Metadata<Targets>) -> Result<(), Refusal> {
    for name in md.signed.targets.keys() {
        if tagtrust_shared::reference::validate_tag(name).is_err() {
            let shown: String = name.chars().take(300).collect();
            return Err(Refusal::invalid(
                role,
                Check::TargetName {
                    target: shown.clone(),
                },
                format!(
                    "{role}: target name {shown:?} is not a valid OCI tag \
                     (1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-')"
                ),
            ));
        }
    }
    Ok(())
}

/// Refuse a key list that names one key (by decoded material, see
/// `PublicKey::identity`) under two key IDs: such a key could meet a
/// threshold of two wherever key IDs are counted.
fn check_distinct_keys(
    role: &str,
    what: &str,
    keys: &BTreeMap<String, tagtrust_shared::PublicKey>,
) -> Result<(), Refusal> {
    match tagtrust_shared::keys::duplicate_key(keys) {
        None => Ok(()),
        Some((a, b)) => Err(Refusal::invalid(
            role,
            Check::DuplicateKey {
                key_ids: [a.clone(), b.clone()],
            },
            format!("{role} lists one key under two key IDs in its {what} ({a} and {b}); list each key once"),
        )),
    }
}

/// A role's entry in the snapshot: hashed bins by version only, every
/// other role with its length and hashes (see [`plan`]).
pub(crate) fn snapshot_entry(is_bin: bool, version: u64, bytes: &[u8]) -> MetaFile {
    if is_bin {
        MetaFile::version_only(version)
    } else {
        MetaFile::describing(version, bytes)
    }
}

/// Validate `uploads` against the repository's `current` files. On success,
/// what to store; on failure, the first problem found (nothing is stored).
/// A successful plan moves `current.unread_bins` into the new snapshot's
/// meta (1,024 bins: building those entries afresh was a tenth of a
/// binned publish); the rest of `current` is left as it was.
pub fn plan(
    current: &mut CurrentRepository,
    uploads: Vec<Upload>,
    now: DateTime<Utc>,
) -> Result<Plan, Refusal> {
    let mut uploaded: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for upload in uploads {
        if TopLevelRole::is_online_name(&upload.role) {
            return Err(not_uploadable(&upload.role));
        }
        if uploaded.contains_key(&upload.role) {
            return Err(Refusal::invalid(
                &upload.role,
                Check::DuplicateUpload,
                format!("{} uploaded twice in one publish", upload.role),
            ));
        }
        uploaded.insert(upload.role, upload.bytes);
    }
    if uploaded.is_empty() {
        return Err(Refusal::NoFiles);
    }
    let mut store = Vec::new();

    // Root: exactly +1, signed by the previous root's threshold and its own.
    let root = match (uploaded.remove(ROOT), current.root.clone()) {
        (Some(bytes), previous) => {
            let new = parse::<Root>(ROOT, &bytes)?;
            check_distinct_keys(ROOT, "keys", &new.signed.keys)?;
            check_version(
                ROOT,
                new.signed.version,
                previous.as_ref().map(|r| r.signed.version),
            )?;
            let verification = verify_root(previous.as_ref().map(|r| &r.signed), &new)
                .map_err(|e| signature_error(ROOT, e))?;
            if let Some((tally, e)) = verification.unmet() {
                let keys = match tally.keys {
                    RootKeys::Previous(version) => {
                        format!("the root keys of root version {version}")
                    }
                    RootKeys::Own => "its own root keys".to_string(),
                };
                return Err(Refusal::invalid(
                    ROOT,
                    Check::Signature,
                    format!("root checked against {keys}: {e}"),
                ));
            }
            check_expiry(ROOT, new.signed.expires, now)?;
            store.push((ROOT.to_string(), new.signed.version, bytes));
            new
        }
        (None, Some(previous)) => previous,
        (None, None) => {
            return Err(Refusal::invalid(
                ROOT,
                Check::Missing,
                "the first publish of a repository must include root and targets",
            ))
        }
    };
    let root_uploaded = store.iter().any(|(r, _, _)| r == ROOT);

    // Effective targets roles: stored, overridden by what is uploaded
    // (the unread bins' versions are in `current.unread_bins`).
    let mut effective: BTreeMap<String, Metadata<Targets>> = BTreeMap::new();
    let mut current_versions: BTreeMap<String, u64> = BTreeMap::new();
    for (role, file) in &current.roles {
        current_versions.insert(role.clone(), file.metadata.signed.version);
        effective.insert(role.clone(), file.metadata.clone());
    }
    let mut parsed_uploads: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (role, bytes) in uploaded {
        let md = parse::<Targets>(&role, &bytes)?;
        check_target_names(&role, &md)?;
        if let Some(delegations) = &md.signed.delegations {
            check_distinct_keys(&role, "delegations", &delegations.keys)?;
        }
        let current_version = current_versions
            .get(&role)
            .copied()
            .or_else(|| current.unread_bins.version(&role));
        if role == TARGETS {
            check_version(&role, md.signed.version, current_version)?;
        } else {
            check_newer(&role, md.signed.version, current_version)?;
        }
        check_expiry(&role, md.signed.expires, now)?;
        effective.insert(role.clone(), md);
        parsed_uploads.insert(role, bytes);
    }

    // Top-level targets: signed per the (new) root.
    match (parsed_uploads.contains_key(TARGETS), effective.get(TARGETS)) {
        (_, None) => {
            return Err(Refusal::invalid(
                TARGETS,
                Check::Missing,
                "the first publish of a repository must include root and targets",
            ))
        }
        (true, Some(targets)) => {
            root.signed
                .verify_role(TARGETS, targets)
                .map_err(|e| signature_error(TARGETS, e))?;
        }
        (false, Some(targets)) if root_uploaded => {
            // Clients check targets against the newest root: refuse a root
            // that would orphan the stored targets.
            root.signed.verify_role(TARGETS, targets).map_err(|e| {
                Refusal::invalid(
                    TARGETS,
                    Check::Signature,
                    format!(
                        "the current targets is not signed by the new root's targets keys ({e}); \
                         upload targets re-signed with them in the same publish"
                    ),
                )
            })?;
        }
        (false, Some(_)) => {}
    }

    // Delegated roles: signed per their delegator, targets within every
    // delegation on the way from top-level targets.
    for role in parsed_uploads.keys().filter(|r| *r != TARGETS) {
        // A role name delegated from two places could be verified against
        // the weaker delegator and then served where the stronger one is
        // trusted: tagtrust requires each delegated name to be unique.
        let (delegator, chain) = match find_delegators(&effective, role).as_slice() {
            [] => {
                return Err(Refusal::invalid(
                    role,
                    Check::UnknownRole,
                    format!("no targets role delegates to {role}"),
                ))
            }
            [one] => one.clone(),
            many => {
                let delegators: Vec<&str> = many.iter().map(|(d, _)| d.as_str()).collect();
                return Err(Refusal::invalid(
                    role,
                    Check::DelegatedTwice,
                    format!(
                        "{role} is delegated by more than one role ({}); delegated role names must be unique",
                        delegators.join(", ")
                    ),
                ));
            }
        };
        let delegations = effective[&delegator]
            .signed
            .delegations
            .as_ref()
            .expect("find_delegators returns roles with delegations");
        let md = &effective[role];
        delegations
            .verify_delegate(role, md)
            .map_err(|e| signature_error(role, e))?;
        for target in md.signed.targets.keys() {
            if !chain.iter().all(|hop| hop.allows(target)) {
                return Err(Refusal::invalid(
                    role,
                    Check::PathNotDelegated {
                        target: target.clone(),
                    },
                    format!("{role} may not sign {target:?}: outside the paths delegated to it"),
                ));
            }
        }
    }
    check_unique_delegations(&effective, &parsed_uploads.keys().cloned().collect())?;
    for (role, bytes) in parsed_uploads {
        let version = effective[&role].signed.version;
        store.push((role, version, bytes));
    }

    // Snapshot: every targets role as it will be after this publish.
    // Hashed bins are listed by version only (spec 1.0 makes length and
    // hashes optional, python-tuf omits them by default): 1,024 bins with
    // hashes make a 135 KB snapshot, most of a cold lookup's bytes
    // (BENCHMARKS.md). A bin is still bound to its version, and signed by
    // its bin key, which the server does not hold unless the publisher
    // delegated the bins to it (`server_bins`, SECURITY.md).
    let bins = effective
        .get("targets")
        .and_then(|t| t.signed.delegations.as_ref());
    let is_bin = |role: &str| bins.is_some_and(|d| d.is_bin(role));
    let read = effective.keys().map(|role| {
        let bytes = store
            .iter()
            .find(|(r, _, _)| r == role)
            .map(|(_, _, b)| b.as_slice())
            .or_else(|| current.roles.get(role).map(|f| f.bytes.as_slice()))
            .expect("an effective role is stored or uploaded");
        let version = effective[role].signed.version;
        (
            file_name(role),
            snapshot_entry(is_bin(role), version, bytes),
        )
    });
    // Bins left unread (those uploaded are effective, listed above) are
    // still bins of the effective targets, as targets is not uploaded
    // (`unread_bins`): listed by version only, as they are listed now. The
    // new `meta` starts from their entries; an effective role's entry
    // replaces a bin's of the same name.
    let UnreadBins(mut snapshot_meta) = std::mem::take(&mut current.unread_bins);
    snapshot_meta.extend(read);
    let parsed = store
        .iter()
        .filter(|(role, _, _)| role != ROOT)
        .filter_map(|(role, _, _)| Some((role.clone(), effective.remove(role)?)))
        .collect();
    let next = |version: Option<u64>| version.map_or(1, |v| v + 1);
    Ok(Plan {
        store,
        root,
        snapshot_meta,
        snapshot_version: next(current.snapshot_version),
        timestamp_version: next(current.timestamp_version),
        parsed,
    })
}
