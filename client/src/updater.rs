//! The TUF client workflow (specification 1.0.x, section 5), modelled on
//! python-tuf's ngclient `Updater`: fetch each file with a size limit, hand
//! it to [`TrustedMetadataSet`], persist it only once it is trusted.
//!
//! The metadata directory is the rollback memory. It holds exactly the bytes
//! received: `root.json`, `timestamp.json`, `snapshot.json`, `targets.json`
//! and `<percent-encoded role>.json` per delegated role, each written
//! atomically (temporary file in the same directory, then rename). Nothing
//! else in it ends in `.json`.

use crate::atomic_file::{read_optional, remove_if_present, write_atomic, FileError};
use crate::cause::{holds_cause, Cause};
use crate::fetch::{FetchError, Fetcher};
use crate::trusted::{TimestampUpdate, TrustError, TrustedMetadataSet, VerifiedRoot};
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tagtrust_shared::{Delegations, Error as TufError, TargetFile};

/// Why an update (or a target download) failed: metadata refused by the
/// state machine, a download, or the local files.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Metadata refused (the named attacks, invalid metadata, call order).
    #[error(transparent)]
    Trust(#[from] TrustError),

    /// A target whose bytes do not match its trusted length and hashes.
    #[error("arbitrary software attack refused: target {path} does not match its trusted metadata: {source}")]
    TargetMismatch { path: String, source: TufError },

    /// A delegated role the signed snapshot does not list: delegated, but
    /// it has never published (a delegate who has not signed anything
    /// yet). The search stops here, as python-tuf's does: going on past
    /// it would let a snapshot that leaves a role out decide which later
    /// delegation answers for its tags.
    #[error("role {role:?} (delegated by {delegator}) has not published any metadata yet: the snapshot lists no {role}.json")]
    NotPublished { role: String, delegator: String },

    /// A target path that cannot be stored safely under the target directory.
    #[error("target path {path:?} refused: {reason}")]
    TargetPath { path: String, reason: String },

    /// Downloading metadata or a target failed ([`Cause::Fetch`]), or local
    /// file system trouble ([`Cause::File`]).
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(UpdateError);

/// What Python's `urllib.parse.quote(name, safe="")` leaves alone: letters,
/// digits and `_.-~`. Role names are encoded this way in URLs and file
/// names, so a name cannot traverse directories or clash with another file.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `urllib.parse.quote(name, safe="")`.
pub fn encode_role(role: &str) -> String {
    utf8_percent_encode(role, QUOTE).to_string()
}

/// The metadata-directory file name of a role: `<encoded role>.json`.
pub fn role_file_name(role: &str) -> String {
    format!("{}.json", encode_role(role))
}

/// Limits of one updater.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Size limit of each `N.root.json`.
    pub root_max_length: u64,
    /// Size limit of `timestamp.json`.
    pub timestamp_max_length: u64,
    /// Size limit of snapshot when timestamp does not give its length.
    pub snapshot_max_length: u64,
    /// Size limit of a targets role when snapshot does not give its length.
    pub targets_max_length: u64,
    /// At most this many new roots per refresh.
    pub max_root_rotations: u64,
    /// At most this many targets roles visited per target search.
    pub max_delegations: usize,
    /// Download targets as `{dirs/}{HASH}.{basename}` when root says
    /// `consistent_snapshot`.
    pub prefix_targets_with_hash: bool,
}

impl Default for UpdaterConfig {
    fn default() -> Self {
        UpdaterConfig {
            root_max_length: 512 * 1024,
            timestamp_max_length: 16 * 1024,
            snapshot_max_length: 2 * 1024 * 1024,
            targets_max_length: 5 * 1024 * 1024,
            max_root_rotations: 32,
            max_delegations: 32,
            prefix_targets_with_hash: true,
        }
    }
}

/// A target found by [`Updater::get_targetinfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// The target path as asked for (a tag, for tagtrust).
    pub path: String,
    /// Length, hashes and custom data as the signing role lists them.
    pub target: TargetFile,
    /// The targets role that signed it (`targets` or a delegated name).
    pub role: String,
}

/// What [`Updater::load_all_roles`] found.
#[derive(Debug, Default)]
pub struct RoleWalk {
    /// The targets roles loaded and verified, in visiting (pre-)order,
    /// `targets` first.
    pub roles: Vec<String>,
    /// The delegator each of `roles` was verified through (`root` for
    /// `targets`).
    pub delegators: std::collections::BTreeMap<String, String>,
    /// Branches that failed and were left out, with their subtrees.
    pub skipped: Vec<SkippedRole>,
    /// Delegated roles not read because the walk had read
    /// `max_delegations` others (with their subtrees): a search would not
    /// reach them either.
    pub beyond_limit: Vec<String>,
}

/// A delegated role the walk could not trust through one delegator.
#[derive(Debug)]
pub struct SkippedRole {
    pub role: String,
    pub delegator: String,
    pub error: UpdateError,
}

impl SkippedRole {
    /// One line for the user.
    pub fn notice(&self) -> String {
        format!(
            "skipped delegated role {:?} as delegated by {:?} (and any roles it delegates to): {}",
            self.role, self.delegator, self.error
        )
    }
}

/// The TUF client for one repository.
pub struct Updater<F: Fetcher> {
    dir: PathBuf,
    base_url: String,
    fetcher: F,
    config: UpdaterConfig,
    trusted: TrustedMetadataSet,
    refreshed: bool,
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// `target_dir` joined with a target path, refusing paths that would leave
/// the directory or cannot be a file name.
fn local_target_path(target_dir: &Path, target: &str) -> Result<PathBuf, UpdateError> {
    let refuse = |reason: &str| UpdateError::TargetPath {
        path: target.to_string(),
        reason: reason.to_string(),
    };
    let mut path = target_dir.to_path_buf();
    for segment in target.split('/') {
        match segment {
            "" => return Err(refuse("empty path segment (or absolute path)")),
            "." | ".." => return Err(refuse("'.' and '..' segments are not allowed")),
            s if s.contains('\0') => return Err(refuse("NUL in path")),
            s => path.push(s),
        }
    }
    Ok(path)
}

/// The roles `delegations` sends the search for `target` to, in order, with
/// their terminating flag. Succinct (TAP 15) bins are terminating.
pub(crate) fn roles_for_target(delegations: &Delegations, target: &str) -> Vec<(String, bool)> {
    if let Some(succinct) = &delegations.succinct_roles {
        return vec![(succinct.role_for_target(target), true)];
    }
    delegations
        .roles()
        .iter()
        .filter(|r| r.is_delegated_path(target))
        .map(|r| (r.name.clone(), r.terminating))
        .collect()
}

impl<F: Fetcher> Updater<F> {
    /// An updater over the metadata directory `metadata_dir`, starting from
    /// `root`, the root trusted there (read and verified once, by the
    /// caller: [`crate::bootstrap`]). Until [`Self::refresh`] or
    /// [`Self::load_local`], [`Self::trusted`] holds only that root; the
    /// local timestamp, snapshot and targets are verified once, by those
    /// (verifying them here too doubled the CPU of a warm lookup,
    /// BENCHMARKS.md).
    pub fn new(
        metadata_dir: &Path,
        metadata_base_url: &str,
        fetcher: F,
        config: UpdaterConfig,
        root: VerifiedRoot,
    ) -> Self {
        Updater {
            dir: metadata_dir.to_path_buf(),
            base_url: with_slash(metadata_base_url),
            fetcher,
            config,
            trusted: TrustedMetadataSet::from_root(root, Utc::now()),
            refreshed: false,
        }
    }

    /// How many delegated roles (hashed bins aside) a search or a walk
    /// reads at most.
    pub fn max_delegations(&self) -> usize {
        self.config.max_delegations
    }

    /// The trusted metadata: after [`Self::refresh`], what this run verified
    /// (versions and expiries for reports); before it, the local state.
    pub fn trusted(&self) -> &TrustedMetadataSet {
        &self.trusted
    }

    /// The metadata directory.
    pub fn metadata_dir(&self) -> &Path {
        &self.dir
    }

    /// The fetcher this updater downloads with.
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }

    /// Fetch `file` of the repository's metadata (at most `max_length`
    /// bytes) with no trust decision: for callers that verify old versions
    /// themselves ([`crate::history`]).
    pub fn fetch_metadata_file(&self, file: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        self.download(file, max_length)
    }

    /// The limits this updater applies.
    pub fn config(&self) -> &UpdaterConfig {
        &self.config
    }

    /// How old the server says a healthy timestamp can be
    /// ([`crate::fetch::TIMESTAMP_MAX_AGE_HEADER`] of the last timestamp
    /// fetched), if it said.
    pub fn server_timestamp_max_age(&self) -> Option<std::time::Duration> {
        self.fetcher.timestamp_max_age()
    }

    fn persist(&self, file: &str, bytes: &[u8]) -> Result<(), UpdateError> {
        Ok(write_atomic(&self.dir.join(file), bytes)?)
    }

    fn remove(&self, file: &str) -> Result<(), UpdateError> {
        Ok(remove_if_present(&self.dir.join(file))?)
    }

    fn read_local(&self, file: &str) -> Option<Vec<u8>> {
        // An unreadable local file is treated as absent: it is rollback
        // memory to use if possible, never a reason to stop updating.
        read_optional(&self.dir.join(file)).ok().flatten()
    }

    fn download(&self, file: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        self.fetcher
            .fetch(&format!("{}{file}", self.base_url), max_length)
    }

    /// Run the update workflow: root chain, timestamp, snapshot, top-level
    /// targets. Every expiry check uses the time this call started. Starts
    /// from the root trusted so far (given to [`Self::new`], or the newest
    /// an earlier refresh accepted), which is not read or verified again.
    pub fn refresh(&mut self) -> Result<(), UpdateError> {
        self.refresh_as_of(Utc::now())
    }

    /// [`Self::refresh`] with every expiry checked as at `reference_time`
    /// instead of now: a consumer's explicit grace for a stale mirror
    /// (`mirror.max_stale`). Rollback checks against the local state are
    /// the same.
    pub fn refresh_as_of(&mut self, reference_time: DateTime<Utc>) -> Result<(), UpdateError> {
        self.refreshed = false;
        self.trusted = TrustedMetadataSet::from_root(self.trusted.verified_root(), reference_time);
        self.load_root()?;
        self.load_timestamp()?;
        self.load_snapshot()?;
        self.load_targets("targets", "root")?;
        self.refreshed = true;
        Ok(())
    }

    /// Offline mode: trust only what is stored locally, checked as at
    /// `reference_time` (the caller's grace: now minus `--max-stale`). Every
    /// role must verify and be unexpired at that time; nothing is fetched
    /// unless the fetcher does (use [`crate::fetch::OfflineFetcher`]).
    pub fn load_local(&mut self, reference_time: DateTime<Utc>) -> Result<(), UpdateError> {
        self.refreshed = false;
        let mut trusted =
            TrustedMetadataSet::from_root(self.trusted.verified_root(), reference_time);
        let missing =
            |file: &str| TrustError::MixAndMatch(format!("no local {file} to use offline"));
        let ts = self
            .read_local("timestamp.json")
            .ok_or_else(|| missing("timestamp.json"))?;
        trusted.load_local_timestamp(&ts)?;
        let snapshot = self
            .read_local("snapshot.json")
            .ok_or_else(|| missing("snapshot.json"))?;
        trusted.load_local_snapshot(&snapshot)?;
        let targets = self
            .read_local("targets.json")
            .ok_or_else(|| missing("targets.json"))?;
        trusted.update_targets(&targets)?;
        self.trusted = trusted;
        self.refreshed = true;
        Ok(())
    }

    /// Spec 5.3: `N+1.root.json` until the repository has none (404/403).
    fn load_root(&mut self) -> Result<(), UpdateError> {
        let start = self.trusted.root().signed.version;
        for version in (start + 1)..=(start + self.config.max_root_rotations) {
            let bytes =
                match self.download(&format!("{version}.root.json"), self.config.root_max_length) {
                    Ok(bytes) => bytes,
                    Err(FetchError::NotFound { .. }) => break,
                    Err(e) => return Err(e.into()),
                };
            self.trusted.update_root(&bytes)?;
            if self.trusted.timestamp_or_snapshot_keys_rotated() {
                // Spec 5.3.11, before the new root is stored: once root.json
                // is the new one, nothing would tell these files are stale.
                self.remove("timestamp.json")?;
                self.remove("snapshot.json")?;
            }
            self.persist("root.json", &bytes)?;
        }
        Ok(())
    }

    /// Spec 5.4. The local timestamp (if any still trusted) is the rollback
    /// memory; an equal remote version keeps it.
    fn load_timestamp(&mut self) -> Result<(), UpdateError> {
        if let Some(local) = self.read_local("timestamp.json") {
            // Errors are fine: an expired local timestamp still stays loaded
            // for rollback checks; an invalid one is simply not used.
            let _ = self.trusted.load_local_timestamp(&local);
        }
        let bytes = self.download("timestamp.json", self.config.timestamp_max_length)?;
        if self.trusted.update_timestamp(&bytes)? == TimestampUpdate::Updated {
            self.persist("timestamp.json", &bytes)?;
        }
        Ok(())
    }

    /// Spec 5.5: the local snapshot if it is the one timestamp names, else
    /// a download checked against timestamp.
    fn load_snapshot(&mut self) -> Result<(), UpdateError> {
        if let Some(local) = self.read_local("snapshot.json") {
            if self.trusted.load_local_snapshot(&local).is_ok() {
                return Ok(());
            }
        }
        let meta = self
            .trusted
            .timestamp()
            .ok_or_else(|| TrustError::Order("snapshot before timestamp".into()))?
            .signed
            .snapshot_meta()
            .map_err(|source| TrustError::Invalid {
                role: "timestamp".into(),
                source,
            })?
            .clone();
        let max = meta.length.unwrap_or(self.config.snapshot_max_length);
        let file = if self.trusted.root().signed.consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            "snapshot.json".to_string()
        };
        let bytes = self.download(&file, max)?;
        self.trusted.update_snapshot(&bytes, false)?;
        self.persist("snapshot.json", &bytes)
    }

    /// Spec 5.6/5.7 for one targets role: already trusted this run, the
    /// local copy if snapshot still lists it, else a download.
    fn load_targets(&mut self, role: &str, delegator: &str) -> Result<(), UpdateError> {
        if self.trusted.targets_role(role).is_some() {
            // Already trusted, perhaps through another delegator: this one
            // must vouch for it as well.
            return Ok(self.trusted.check_delegated_by(role, delegator)?);
        }
        let local_file = role_file_name(role);
        if let Some(local) = self.read_local(&local_file) {
            if self
                .trusted
                .update_delegated_targets(&local, role, delegator)
                .is_ok()
            {
                return Ok(());
            }
        }
        let snapshot = self
            .trusted
            .snapshot()
            .ok_or_else(|| TrustError::Order("targets before snapshot".into()))?;
        let meta =
            snapshot
                .signed
                .role_meta(role)
                .cloned()
                .ok_or_else(|| UpdateError::NotPublished {
                    role: role.to_string(),
                    delegator: delegator.to_string(),
                })?;
        let max = meta.length.unwrap_or(self.config.targets_max_length);
        let remote_file = if self.trusted.root().signed.consistent_snapshot {
            format!("{}.{local_file}", meta.version)
        } else {
            local_file.clone()
        };
        let bytes = self.download(&remote_file, max)?;
        self.trusted
            .update_delegated_targets(&bytes, role, delegator)?;
        self.persist(&local_file, &bytes)
    }

    /// Find `target_path` by a lazy pre-order depth-first search of the
    /// delegation graph (spec 5.7): only roles the search visits are
    /// fetched, in delegation order, each once; a terminating role ends the
    /// search after its subtree; at most `max_delegations` roles. Refreshes
    /// first if this updater has not refreshed successfully.
    pub fn get_targetinfo(&mut self, target_path: &str) -> Result<Option<TargetInfo>, UpdateError> {
        if !self.refreshed {
            self.refresh()?;
        }
        // Stack of (role, delegator); popped from the end.
        let mut to_visit = vec![("targets".to_string(), "root".to_string())];
        let mut visited = BTreeSet::new();
        // As python-tuf: top-level targets plus at most max_delegations roles.
        while visited.len() <= self.config.max_delegations {
            let Some((role, delegator)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue;
            }
            self.load_targets(&role, &delegator)?;
            let targets = self
                .trusted
                .targets_role(&role)
                .ok_or_else(|| TrustError::Order(format!("{role} not loaded")))?;
            if let Some(target) = targets.signed.targets.get(target_path) {
                return Ok(Some(TargetInfo {
                    path: target_path.to_string(),
                    target: target.clone(),
                    role,
                }));
            }
            visited.insert(role.clone());
            if let Some(delegations) = &targets.signed.delegations {
                let mut children = Vec::new();
                for (child, terminating) in roles_for_target(delegations, target_path) {
                    children.push((child, role.clone()));
                    if terminating {
                        // Nothing after a terminating role is consulted,
                        // including roles still waiting further up.
                        to_visit.clear();
                        break;
                    }
                }
                to_visit.extend(children.into_iter().rev());
            }
        }
        Ok(None)
    }

    /// Load the one delegated role `role` as delegated by `delegator`
    /// (which must be trusted already: top-level targets after a refresh,
    /// or a role loaded before): the local copy if snapshot still lists it, else a
    /// download. For a publisher that knows which role it signs (a hashed
    /// bin of top-level targets), so it need not walk every role.
    pub fn load_delegated_role(&mut self, role: &str, delegator: &str) -> Result<(), UpdateError> {
        if !self.refreshed {
            self.refresh()?;
        }
        if self.trusted.targets_role(delegator).is_none() {
            return Err(
                TrustError::Order(format!("{role} before its delegator {delegator}")).into(),
            );
        }
        self.load_targets(role, delegator)
    }

    /// Load every delegated role reachable from top-level targets that
    /// snapshot lists (a delegated role not published yet has nothing to
    /// load), pre-order, each once, at most `max_delegations` of them
    /// besides hashed bins (the rest in [`RoleWalk::beyond_limit`]). For
    /// publishers and listings; a lookup uses [`Self::get_targetinfo`],
    /// which fetches only what its search visits.
    ///
    /// Hashed bins (succinct, or explicit roles selected by name hash
    /// alone) do not count against the limit: a search visits the one bin
    /// a tag hashes to, so every bin's tags are found by lookups, and a
    /// repository of 1,024 bins has 1,024 roles by design, each listed in
    /// the snapshot (whose size bounds them).
    ///
    /// A delegated branch that fails (its role does not verify under the
    /// keys its delegator gives it, cannot be fetched, or is a name already
    /// trusted through another delegator with other keys) is skipped with
    /// its subtree and reported in [`RoleWalk::skipped`]: one broken or
    /// hostile branch must not hide every other role. Only top-level
    /// targets failing fails the walk. Nothing skipped is trusted.
    pub fn load_all_roles(&mut self) -> Result<RoleWalk, UpdateError> {
        if !self.refreshed {
            self.refresh()?;
        }
        // (role, its delegator, is it a hashed bin of that delegator?)
        let mut to_visit = vec![("targets".to_string(), "root".to_string(), false)];
        let mut walk = RoleWalk::default();
        // Roles read that count against `max_delegations`: all but bins.
        let mut counted = 0;
        while let Some((role, delegator, bin)) = to_visit.pop() {
            if walk.roles.contains(&role) {
                // Reached again through another delegator: it must vouch
                // for the same metadata, or that branch is skipped.
                if let Err(error) = self.trusted.check_delegated_by(&role, &delegator) {
                    walk.skipped.push(SkippedRole {
                        role,
                        delegator,
                        error: error.into(),
                    });
                }
                continue;
            }
            if !bin && counted > self.config.max_delegations {
                walk.beyond_limit.push(role);
                continue;
            }
            if let Err(error) = self.load_targets(&role, &delegator) {
                if role == "targets" {
                    return Err(error);
                }
                walk.skipped.push(SkippedRole {
                    role,
                    delegator,
                    error,
                });
                continue;
            }
            walk.roles.push(role.clone());
            walk.delegators.insert(role.clone(), delegator);
            counted += usize::from(!bin);
            let targets = self
                .trusted
                .targets_role(&role)
                .ok_or_else(|| TrustError::Order(format!("{role} not loaded")))?;
            let snapshot = self
                .trusted
                .snapshot()
                .ok_or_else(|| TrustError::Order("targets before snapshot".into()))?;
            let Some(delegations) = &targets.signed.delegations else {
                continue;
            };
            let mut children: Vec<(String, bool)> = delegations
                .roles()
                .iter()
                .map(|r| (r.name.clone(), r.is_hash_bin()))
                .collect();
            if let Some(succinct) = &delegations.succinct_roles {
                children.extend(
                    snapshot
                        .signed
                        .meta
                        .keys()
                        .filter_map(|file| file.strip_suffix(".json"))
                        .filter(|name| succinct.is_bin(name))
                        .map(|name| (name.to_string(), true)),
                );
            }
            to_visit.extend(
                children
                    .into_iter()
                    .filter(|(child, _)| snapshot.signed.role_meta(child).is_some())
                    .map(|(child, bin)| (child, role.clone(), bin))
                    .rev(),
            );
        }
        Ok(walk)
    }

    /// The local path of `info` under `target_dir` if it is already there
    /// with the right length and hashes.
    pub fn find_cached_target(
        &self,
        info: &TargetInfo,
        target_dir: &Path,
    ) -> Result<Option<PathBuf>, UpdateError> {
        let path = local_target_path(target_dir, &info.path)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == info.target.length => {}
            _ => return Ok(None),
        }
        let bytes = read_optional(&path)?.unwrap_or_default();
        Ok(info.target.verify_bytes(&bytes).is_ok().then_some(path))
    }

    /// Download `info` from `target_base_url` into `target_dir` (under its
    /// target path), checking length and hashes before writing anything.
    /// A file already there with the right length and hashes is kept.
    pub fn download_target(
        &self,
        info: &TargetInfo,
        target_dir: &Path,
        target_base_url: &str,
    ) -> Result<PathBuf, UpdateError> {
        if let Some(path) = self.find_cached_target(info, target_dir)? {
            return Ok(path);
        }
        let path = local_target_path(target_dir, &info.path)?;
        let mut remote = info.path.clone();
        if self.trusted.root().signed.consistent_snapshot && self.config.prefix_targets_with_hash {
            let hash =
                info.target
                    .hashes
                    .values()
                    .next()
                    .ok_or_else(|| UpdateError::TargetPath {
                        path: info.path.clone(),
                        reason: "target lists no hashes".into(),
                    })?;
            remote = match info.path.rsplit_once('/') {
                Some((dirs, base)) => format!("{dirs}/{hash}.{base}"),
                None => format!("{hash}.{}", info.path),
            };
        }
        let url = format!("{}{remote}", with_slash(target_base_url));
        let bytes = self.fetcher.fetch(&url, info.target.length)?;
        info.target
            .verify_bytes(&bytes)
            .map_err(|source| UpdateError::TargetMismatch {
                path: info.path.clone(),
                source,
            })?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| FileError::new(format!("creating {}", parent.display()), e))?;
        }
        write_atomic(&path, &bytes)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests;
