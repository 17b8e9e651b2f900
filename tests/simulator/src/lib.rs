//! A TUF repository simulated in memory, in the spirit of python-tuf's
//! `RepositorySimulator`: real keys, real signatures, every top-level role
//! and one delegated role (`dev`, for `apps/*`), versions published on
//! demand, root and role keys rotated, and files forged (wrong signers,
//! rolled-back versions, tampered bytes) the way an attacker would.
//!
//! The repository serves its files by name ([`RepositorySimulator::file`])
//! and logs every request, so a test can say exactly what a client asked
//! for; [`RepositorySimulator::write_to`] lays the files out in a directory
//! for a static server or a proxy. It depends on `tagtrust-shared` only:
//! the client implements its own `Fetcher` for it in its test code.

use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use tagtrust_shared::metadata::Role;
use tagtrust_shared::{
    DelegatedRole, Delegations, MetaFile, Metadata, Root, SigningKey, Snapshot, TargetFile,
    Targets, Timestamp,
};

/// Assert that `result` is an error matching `pattern` (with an optional
/// `if` guard); otherwise panic with what came instead. For the refusal
/// tests of the client state machine and the server's import core.
#[macro_export]
macro_rules! assert_refused {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

/// The delegated role every simulated repository has.
pub const DELEGATED_ROLE: &str = "dev";

/// Sign `signed` with each of `keys` and return the metadata file's bytes.
pub fn sign<T: Role>(signed: T, keys: &[&SigningKey]) -> Vec<u8> {
    let mut md = Metadata::new(signed).expect("simulated metadata serialises canonically");
    for k in keys {
        md.sign(k);
    }
    md.to_bytes()
}

/// A target entry (length and sha256) describing `bytes`.
pub fn target_file(bytes: &[u8]) -> TargetFile {
    target_of(
        bytes.len() as u64,
        &tagtrust_shared::hashes::sha256_hex(bytes),
    )
}

/// A target entry of `length` bytes with the sha256 `sha256_hex` (for
/// image manifests known only by digest and size).
pub fn target_of(length: u64, sha256_hex: &str) -> TargetFile {
    TargetFile {
        length,
        hashes: BTreeMap::from([("sha256".to_string(), sha256_hex.to_string())]),
        custom: None,
        extra: Default::default(),
    }
}

/// A delegation of `paths` to `name`, signed by `key` alone (threshold 1).
pub fn delegated_role(name: &str, key: &SigningKey, paths: &[&str]) -> DelegatedRole {
    DelegatedRole {
        name: name.into(),
        keyids: vec![key.key_id()],
        threshold: 1,
        terminating: false,
        paths: Some(paths.iter().map(|p| p.to_string()).collect()),
        path_hash_prefixes: None,
        extra: Default::default(),
    }
}

/// As [`delegated_role`], terminating: a target it does not sign is not
/// searched for further down the delegation order.
pub fn terminating_role(name: &str, key: &SigningKey, paths: &[&str]) -> DelegatedRole {
    DelegatedRole {
        terminating: true,
        ..delegated_role(name, key, paths)
    }
}

/// The `delegations` block delegating to `roles`, listing each role's key.
pub fn delegations(roles: Vec<(DelegatedRole, &SigningKey)>) -> Delegations {
    Delegations {
        keys: roles
            .iter()
            .map(|(_, k)| (k.key_id(), k.public_key()))
            .collect(),
        roles: Some(roles.into_iter().map(|(r, _)| r).collect()),
        succinct_roles: None,
        extra: Default::default(),
    }
}

/// A copy of `key` (`SigningKey` is deliberately not `Clone`).
pub fn dup(key: &SigningKey) -> SigningKey {
    SigningKey::from_seed(&key.seed()).expect("a key's own seed")
}

/// The key made from a 32-byte seed of `seed` repeated: the same key in
/// every run, for deterministic files (fuzz corpora).
pub fn seeded_key(seed: u8) -> SigningKey {
    SigningKey::from_seed(&[seed; 32]).expect("32-byte seed")
}

/// `bytes` with every `from` replaced by `to`, signatures untouched: a
/// file whose signatures no longer cover its content.
pub fn tampered(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).expect("metadata is UTF-8");
    assert!(text.contains(from), "{from:?} is not in the file");
    text.replace(from, to).into_bytes()
}

/// The signing keys of a repository's roles.
pub struct Keys {
    pub root: SigningKey,
    pub timestamp: SigningKey,
    pub snapshot: SigningKey,
    pub targets: SigningKey,
    pub delegate: SigningKey,
}

impl Keys {
    /// Fresh random keys.
    pub fn generate() -> Keys {
        Keys {
            root: SigningKey::generate(),
            timestamp: SigningKey::generate(),
            snapshot: SigningKey::generate(),
            targets: SigningKey::generate(),
            delegate: SigningKey::generate(),
        }
    }
}

/// A repository in memory: its keys, the current root and every root
/// version signed so far, and the files it serves.
pub struct RepositorySimulator {
    /// Keys that sign the next root (old and new ones during a rotation).
    pub root_keys: Vec<SigningKey>,
    pub root: Root,
    pub timestamp_key: SigningKey,
    pub snapshot_key: SigningKey,
    pub targets_key: SigningKey,
    /// The key of the delegated role `dev`.
    pub delegate_key: SigningKey,
    /// Every root version signed, `roots[0]` being version 1.
    pub roots: Vec<Vec<u8>>,
    /// The clock the repository's expiry dates count from.
    pub now: DateTime<Utc>,
    /// When timestamp, snapshot and targets files expire.
    pub expires: DateTime<Utc>,
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    log: Mutex<Vec<String>>,
}

impl Default for RepositorySimulator {
    fn default() -> Self {
        Self::new()
    }
}

impl RepositorySimulator {
    /// A repository with fresh keys: root v1 (expiring in 30 days) signed,
    /// other metadata expiring in 7 days, nothing served yet.
    pub fn new() -> RepositorySimulator {
        let now = Utc::now();
        Self::with_keys(
            Keys::generate(),
            now,
            now + Duration::days(30),
            now + Duration::days(7),
        )
    }

    /// A repository with these keys and dates (deterministic when the keys
    /// are [`seeded_key`]s and the dates fixed).
    pub fn with_keys(
        keys: Keys,
        now: DateTime<Utc>,
        root_expires: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> RepositorySimulator {
        let mut root = Root::new(root_expires);
        root.add_key("root", keys.root.public_key());
        root.add_key("timestamp", keys.timestamp.public_key());
        root.add_key("snapshot", keys.snapshot.public_key());
        root.add_key("targets", keys.targets.public_key());
        let bytes = sign(root.clone(), &[&keys.root]);
        RepositorySimulator {
            root_keys: vec![keys.root],
            root,
            timestamp_key: keys.timestamp,
            snapshot_key: keys.snapshot,
            targets_key: keys.targets,
            delegate_key: keys.delegate,
            roots: vec![bytes],
            now,
            expires,
            files: Mutex::default(),
            log: Mutex::default(),
        }
    }

    /// When timestamp, snapshot and targets files expire.
    pub fn expires(&self) -> DateTime<Utc> {
        self.expires
    }

    /// Sign root version N+1 after `change`, with the old root keys and any
    /// new ones `change` pushes onto `root_keys`; then keep only the keys
    /// the new root lists. Returns the new root's bytes (not served: see
    /// [`Self::publish_root`]).
    pub fn rotate_root(
        &mut self,
        change: impl FnOnce(&mut Root, &mut RepositorySimulator),
    ) -> Vec<u8> {
        let mut root = self.root.clone();
        root.version += 1;
        change(&mut root, self);
        let new_ids: Vec<String> = root.roles["root"].keyids.clone();
        let signers: Vec<&SigningKey> = self.root_keys.iter().collect();
        let bytes = sign(root.clone(), &signers);
        self.root = root;
        self.root_keys.retain(|k| new_ids.contains(&k.key_id()));
        self.roots.push(bytes.clone());
        bytes
    }

    /// Root version N+1 with `role`'s keys replaced by `new_key` (the
    /// simulator signs that role with it from now on).
    pub fn rotate_role_key(&mut self, role: &str, new_key: SigningKey) -> Vec<u8> {
        let public = new_key.public_key();
        let bytes = self.rotate_root(|root, _| root.replace_role_keys(role, &[public]));
        match role {
            "timestamp" => self.timestamp_key = new_key,
            "snapshot" => self.snapshot_key = new_key,
            "targets" => self.targets_key = new_key,
            other => panic!("rotate_role_key: {other} is not an online or targets role"),
        }
        bytes
    }

    /// Timestamp `version` describing `snapshot` as `snapshot_version`.
    pub fn timestamp(&self, version: u64, snapshot: &[u8], snapshot_version: u64) -> Vec<u8> {
        let ts = Timestamp::new(
            version,
            self.expires(),
            MetaFile::describing(snapshot_version, snapshot),
        );
        sign(ts, &[&self.timestamp_key])
    }

    /// Snapshot `version` listing each `(role, bytes, version)`.
    pub fn snapshot(&self, version: u64, roles: &[(&str, &[u8], u64)]) -> Vec<u8> {
        let meta = roles
            .iter()
            .map(|(name, bytes, v)| (format!("{name}.json"), MetaFile::describing(*v, bytes)))
            .collect();
        sign(
            Snapshot::new(version, self.expires(), meta),
            &[&self.snapshot_key],
        )
    }

    /// Top-level targets with one target `top` and a delegation to `dev`
    /// for `apps/*`.
    pub fn targets(&self, version: u64) -> Vec<u8> {
        let mut t = Targets::new(version, self.expires());
        t.targets.insert("top".into(), target_file(b"top bytes"));
        t.delegations = Some(delegations(vec![(
            delegated_role(DELEGATED_ROLE, &self.delegate_key, &["apps/*"]),
            &self.delegate_key,
        )]));
        sign(t, &[&self.targets_key])
    }

    /// The delegated role `dev` with one target `apps/app`, signed by
    /// `signer` (the delegate key, or another to forge it).
    pub fn delegated(&self, version: u64, signer: &SigningKey) -> Vec<u8> {
        let mut t = Targets::new(version, self.expires());
        t.targets
            .insert("apps/app".into(), target_file(b"app bytes"));
        sign(t, &[signer])
    }

    /// A consistent release: (timestamp, snapshot, targets, dev) at `version`.
    /// Signatures are deterministic: the same version gives the same bytes.
    pub fn release(&self, version: u64) -> [Vec<u8>; 4] {
        let targets = self.targets(version);
        let dev = self.delegated(version, &self.delegate_key);
        let snapshot = self.snapshot(
            version,
            &[
                ("targets", &targets, version),
                (DELEGATED_ROLE, &dev, version),
            ],
        );
        let timestamp = self.timestamp(version, &snapshot, version);
        [timestamp, snapshot, targets, dev]
    }

    /// Serve `bytes` as `name` (replacing what was served under it).
    pub fn put(&self, name: &str, bytes: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(name.to_string(), bytes.to_vec());
    }

    /// Serve release `version` under consistent-snapshot names:
    /// `timestamp.json`, `N.snapshot.json`, `N.targets.json`, `N.dev.json`.
    pub fn publish(&self, version: u64) {
        let [ts, snap, targets, dev] = self.release(version);
        self.put("timestamp.json", &ts);
        self.put(&format!("{version}.snapshot.json"), &snap);
        self.put(&format!("{version}.targets.json"), &targets);
        self.put(&format!("{version}.{DELEGATED_ROLE}.json"), &dev);
    }

    /// Serve the latest root as `N.root.json` (and `root.json`).
    pub fn publish_root(&self) {
        let bytes = self.roots.last().expect("root v1 is signed at creation");
        self.put(&format!("{}.root.json", self.root.version), bytes);
        self.put("root.json", bytes);
    }

    /// The file served as `name`, logging the request.
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.log.lock().unwrap().push(name.to_string());
        self.files.lock().unwrap().get(name).cloned()
    }

    /// The names asked for since the last call, oldest first.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// Write every served file below `dir` (names may contain `/`).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        for (name, bytes) in self.files.lock().unwrap().iter() {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)?;
        }
        Ok(())
    }
}

/// The names of the `*.json` files directly in `dir`, sorted: what a
/// client kept of a repository.
pub fn json_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read a metadata directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_verify_against_the_root_and_are_deterministic() {
        let repo = RepositorySimulator::new();
        let root = Metadata::<Root>::from_bytes(&repo.roots[0]).unwrap();
        let [ts, snap, targets, dev] = repo.release(3);
        let ts = Metadata::<Timestamp>::from_bytes(&ts).unwrap();
        root.signed.verify_role("timestamp", &ts).unwrap();
        ts.signed
            .snapshot_meta()
            .unwrap()
            .verify_bytes(&snap)
            .unwrap();
        let targets_md = Metadata::<Targets>::from_bytes(&targets).unwrap();
        root.signed.verify_role("targets", &targets_md).unwrap();
        let delegations = targets_md.signed.delegations.as_ref().unwrap();
        let dev_md = Metadata::<Targets>::from_bytes(&dev).unwrap();
        delegations
            .verify_delegate(DELEGATED_ROLE, &dev_md)
            .unwrap();
        assert_eq!(repo.release(3)[1], snap);
    }

    #[test]
    fn rotation_signs_with_old_and_new_keys_and_keeps_the_new() {
        let mut repo = RepositorySimulator::new();
        let new_key = SigningKey::generate();
        let v2 = repo.rotate_root(|root, repo| {
            root.replace_role_keys("root", &[new_key.public_key()]);
            repo.root_keys.push(dup(&new_key));
        });
        let v1 = Metadata::<Root>::from_bytes(&repo.roots[0]).unwrap();
        let v2 = Metadata::<Root>::from_bytes(&v2).unwrap();
        v1.signed.verify_role("root", &v2).unwrap();
        v2.signed.verify_role("root", &v2).unwrap();
        assert_eq!(repo.root_keys.len(), 1);
        assert_eq!(repo.root_keys[0].key_id(), new_key.key_id());

        let ts_key = SigningKey::generate();
        let ts_id = ts_key.key_id();
        repo.rotate_role_key("timestamp", ts_key);
        assert_eq!(repo.root.roles["timestamp"].keyids, [ts_id]);
    }

    #[test]
    fn serves_by_name_logs_requests_and_writes_a_directory() {
        let repo = RepositorySimulator::new();
        repo.publish(1);
        repo.publish_root();
        assert!(repo.file("1.dev.json").is_some());
        assert!(repo.file("2.root.json").is_none());
        assert_eq!(repo.take_log(), ["1.dev.json", "2.root.json"]);
        assert!(repo.take_log().is_empty());
        let dir = std::env::temp_dir().join(format!("tagtrust-sim-{}", std::process::id()));
        repo.write_to(&dir).unwrap();
        assert_eq!(
            std::fs::read(dir.join("1.root.json")).unwrap(),
            repo.roots[0]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tampering_keeps_the_signatures() {
        let repo = RepositorySimulator::new();
        let [ts, ..] = repo.release(1);
        let forged = tampered(&ts, "\"version\":1", "\"version\":9");
        let before = Metadata::<Timestamp>::from_bytes(&ts).unwrap();
        let after = Metadata::<Timestamp>::from_bytes(&forged).unwrap();
        assert_eq!(before.signatures, after.signatures);
        assert_eq!(after.signed.version, 9);
    }
}
