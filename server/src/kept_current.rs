//! What the last publish through this process left of a repository's
//! current files, parsed, for the repository's next publish: root, the
//! targets roles as the publish left them (read or uploaded), less the
//! hashed bins of a succinct delegation (which a publish leaves unread:
//! `publish::unread_bins`; explicit `path_hash_prefixes` bins are read by
//! every publish, so they are kept like any role), and the snapshot's
//! `meta` entries (as signed, so the next snapshot starts from them), each
//! with the sha256 of the stored file it was parsed from. Kept per GUN,
//! least recently used evicted first, within a byte budget (a quarter of
//! `--file-cache-bytes`; 0 keeps none; a repository costing more than the
//! whole budget is not kept).
//!
//! The next publish takes the entry out and asks the store for its current
//! files without the bytes of those it holds by role and sha256
//! ([`crate::storage::RepoTx::current_files_known`]): a file whose sha256
//! matches is the file kept, whatever happened in between (a publish
//! through another process, a re-sign, a refused publish), and one that
//! does not is read and parsed as before, so nothing has to invalidate an
//! entry. Parsing root and targets and the 1,025-entry listing of a binned
//! repository, and reading its 31 KB snapshot, were about a tenth of a
//! publish.

use crate::budget_lru::{BudgetLru, Cost};
use crate::publish::{CurrentRepository, CurrentRole};
use crate::storage::CurrentFile;
use std::collections::BTreeMap;
use tagtrust_shared::{MetaFile, Metadata, Root, TopLevelRole};

/// A snapshot's `meta` entries by file name: as this server signed them
/// when kept by the publish that signed it, each by version only when
/// parsed from a stored snapshot (all a publish reads of an entry). A map,
/// as the new snapshot's `meta` is: [`crate::publish::unread_bins`] takes
/// the bins out of it whole, and [`crate::publish::plan`] starts the new
/// `meta` from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SnapshotListing(pub(crate) BTreeMap<String, MetaFile>);

impl SnapshotListing {
    /// The roles listed, with their versions: the entries' file names less
    /// `.json` (an entry without it is left out: not a role).
    pub(crate) fn roles(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0
            .iter()
            .filter_map(|(name, entry)| Some((name.strip_suffix(".json")?, entry.version)))
    }
}

impl<'de> serde::Deserialize<'de> for SnapshotListing {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A `meta` entry's version, all a listing reads of it.
        #[derive(serde::Deserialize)]
        struct ListedVersion {
            version: u64,
        }
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = SnapshotListing;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("snapshot meta entries")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SnapshotListing, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, file)) = map.next_entry::<String, ListedVersion>()? {
                    entries.push((name, MetaFile::version_only(file.version)));
                }
                Ok(SnapshotListing(entries.into_iter().collect()))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// One file kept parsed, with the sha256 of its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Kept<T> {
    pub(crate) sha256: String,
    pub(crate) value: T,
}

/// What is kept of one repository (see the module).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeptCurrent {
    pub(crate) root: Option<Kept<Metadata<Root>>>,
    /// Targets and delegated roles by name, as a publish holds them.
    pub(crate) roles: BTreeMap<String, Kept<CurrentRole>>,
    pub(crate) snapshot: Option<Kept<SnapshotListing>>,
}

/// The kept entries, by GUN.
pub(crate) type KeptRepositories = BudgetLru<KeptCurrent>;

impl KeptCurrent {
    /// `role:sha256` of each kept file among `roles`: what
    /// [`crate::storage::RepoTx::current_files_known`] need not read.
    pub(crate) fn known(&self, roles: &[&str]) -> Vec<String> {
        let key = |role: &str, sha256: &str| format!("{role}:{sha256}");
        roles
            .iter()
            .filter_map(|role| match TopLevelRole::parse(role) {
                Some(TopLevelRole::Root) => self.root.as_ref().map(|k| key(role, &k.sha256)),
                Some(TopLevelRole::Snapshot) => {
                    self.snapshot.as_ref().map(|k| key(role, &k.sha256))
                }
                Some(TopLevelRole::Timestamp) => None,
                Some(TopLevelRole::Targets) | None => {
                    self.roles.get(*role).map(|k| key(role, &k.sha256))
                }
            })
            .collect()
    }

    /// Add `files` to `current` (the role files) and `listing` (the
    /// snapshot's), each moved out of what is kept when read without bytes,
    /// else parsed; and note each file's sha256 in `read` by role, so that
    /// what the publish holds can be kept again ([`KeptCurrent::of`]). A
    /// file read without bytes that is not kept is an error (the caller
    /// named it in `known`: never).
    pub(crate) fn add_read(
        &mut self,
        files: Vec<CurrentFile>,
        current: &mut CurrentRepository,
        listing: &mut Option<SnapshotListing>,
        read: &mut BTreeMap<String, String>,
    ) -> Result<(), crate::publish::CorruptFile> {
        let missing = |role: &str| crate::publish::CorruptFile {
            role: role.to_string(),
            reason: format!("{role} was read without its bytes and is not kept"),
        };
        for file in files {
            let CurrentFile {
                role,
                version,
                sha256,
                bytes,
            } = file;
            match (bytes, TopLevelRole::parse(&role)) {
                (Some(bytes), _) => current.add_files([(role.as_str(), version, &bytes[..])])?,
                (None, Some(TopLevelRole::Root)) => {
                    current.root = Some(self.root.take().ok_or_else(|| missing(&role))?.value);
                }
                (None, Some(TopLevelRole::Snapshot)) => {
                    current.snapshot_version = Some(version);
                    *listing = Some(self.snapshot.take().ok_or_else(|| missing(&role))?.value);
                }
                (None, Some(TopLevelRole::Timestamp)) => return Err(missing(&role)),
                (None, Some(TopLevelRole::Targets) | None) => {
                    let kept = self.roles.remove(&role).ok_or_else(|| missing(&role))?;
                    current.roles.insert(role.clone(), kept.value);
                }
            }
            read.insert(role, sha256);
        }
        Ok(())
    }

    /// What to keep of `current` once a publish is done with it: its root
    /// and roles whose files' sha256s `read` notes (the caller notes what
    /// it read and what it stored; anything else is left out), less the
    /// hashed bins of its targets' succinct delegation (a publish leaves
    /// those unread), and `listing` as the listing of the snapshot `read`
    /// notes.
    pub(crate) fn of(
        current: CurrentRepository,
        read: &BTreeMap<String, String>,
        listing: Option<SnapshotListing>,
    ) -> KeptCurrent {
        let kept = |role: &str| read.get(role).cloned();
        let bins = current
            .roles
            .get(TopLevelRole::Targets.as_str())
            .and_then(|t| t.metadata.signed.delegations.as_ref())
            .and_then(|d| d.succinct_roles.clone());
        let root_sha256 = kept(TopLevelRole::Root.as_str());
        KeptCurrent {
            root: current
                .root
                .zip(root_sha256)
                .map(|(value, sha256)| Kept { sha256, value }),
            roles: current
                .roles
                .into_iter()
                .filter(|(role, _)| !bins.as_ref().is_some_and(|b| b.is_bin(role)))
                .filter_map(|(role, value)| {
                    let sha256 = kept(&role)?;
                    Some((role, Kept { sha256, value }))
                })
                .collect(),
            snapshot: kept(TopLevelRole::Snapshot.as_str())
                .zip(listing)
                .map(|(sha256, value)| Kept { sha256, value }),
        }
    }
}

/// What an entry costs beyond its files (key, bookkeeping).
const OVERHEAD: usize = 256;

/// Heap bytes of a parsed targets role, kept with its file's bytes, per
/// byte of the file: parsing a 10,000-tag targets (1.15 MB) allocates 9.1×
/// its size (the tags' maps, strings and the canonical copy; 8.6× at 100
/// tags), plus the bytes themselves. Measured with
/// `cargo run --release -p tagtrust-shared --example parsed_size`.
const PARSED_TARGETS_PER_BYTE: usize = 10;

/// Heap bytes of a parsed root per byte of its canonical form (measured
/// 3.8× for a root of four roles; its size is up to the publish limit).
const PARSED_ROOT_PER_BYTE: usize = 4;

/// Heap bytes of a `BTreeMap<String, String>` of a few entries: one leaf
/// node (eleven key and value slots) besides the strings themselves.
const HASHES_NODE: usize = 544;

impl Cost for SnapshotListing {
    /// Roughly: each entry's name, its slot and a share of the map's node,
    /// and the hashes of the entries that have them (a listing kept from
    /// the snapshot the server signed describes targets and delegated
    /// roles fully: about 620 bytes more each). The server's snapshot
    /// entries carry no other fields (`snapshot_entry`).
    fn cost(&self) -> usize {
        self.0
            .iter()
            .map(|(name, entry)| {
                let hashes = entry.hashes.as_ref().map_or(0, |hashes| {
                    HASHES_NODE
                        + hashes
                            .iter()
                            .map(|(k, v)| k.capacity() + v.capacity())
                            .sum::<usize>()
                });
                name.capacity() + 2 * std::mem::size_of::<(String, MetaFile)>() + hashes
            })
            .sum::<usize>()
    }
}

impl Cost for KeptCurrent {
    /// What its parsed files hold on the heap, as measured (the constants
    /// above).
    fn cost(&self) -> usize {
        OVERHEAD
            + self.root.as_ref().map_or(0, |k| {
                PARSED_ROOT_PER_BYTE * k.value.canonical_signed().len()
            })
            + self
                .roles
                .values()
                .map(|k| PARSED_TARGETS_PER_BYTE * k.value.bytes.len())
                .sum::<usize>()
            + self.snapshot.as_ref().map_or(0, |k| k.value.cost())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::CurrentRepository;

    fn listing(roles: &[(&str, u64)]) -> SnapshotListing {
        SnapshotListing(
            roles
                .iter()
                .map(|(r, v)| (format!("{r}.json"), MetaFile::version_only(*v)))
                .collect(),
        )
    }

    #[test]
    fn entries_are_listed_by_version_and_roles_are_the_json_files() {
        let meta = r#"{"targets.json":{"version":3},"bins-0.json":{"version":1,"length":9},"notes.txt":{"version":2}}"#;
        let parsed: SnapshotListing = serde_json::from_str(meta).unwrap();
        let mut expected = listing(&[("targets", 3), ("bins-0", 1)]);
        expected
            .0
            .insert("notes.txt".to_string(), MetaFile::version_only(2));
        assert_eq!(parsed, expected);
        let roles: Vec<(&str, u64)> = parsed.roles().collect();
        assert_eq!(roles, [("bins-0", 1), ("targets", 3)]);
    }

    /// A listing kept from the server's own snapshot describes targets
    /// fully: its hashes are counted, not only its name and version.
    #[test]
    fn a_described_entry_costs_its_hashes_too() {
        let bare = listing(&[("targets", 3)]);
        let mut described = bare.clone();
        described.0.insert(
            "targets.json".to_string(),
            MetaFile::describing(3, b"the targets file"),
        );
        let digest = described.0["targets.json"].hashes.as_ref().unwrap()["sha256"].len();
        assert!(described.cost() >= bare.cost() + HASHES_NODE + digest);
    }

    fn row(role: &str, version: u64, sha256: &str, bytes: Option<&[u8]>) -> CurrentFile {
        CurrentFile {
            role: role.to_string(),
            version,
            sha256: sha256.to_string(),
            bytes: bytes.map(bytes::Bytes::copy_from_slice),
        }
    }

    /// A binned repository kept after a publish: root, targets and the
    /// listing, not the bins; the next read takes what it names without
    /// bytes from what is kept and parses the rest.
    #[test]
    fn what_is_kept_is_taken_by_role_and_sha256() {
        let (full, bin) = crate::publish::tests::binned("latest");
        let read: BTreeMap<String, String> = [
            ("root", "r1"),
            ("targets", "t1"),
            (bin.as_str(), "b1"),
            ("snapshot", "s1"),
        ]
        .into_iter()
        .map(|(role, sha)| (role.to_string(), sha.to_string()))
        .collect();
        let mut kept = KeptCurrent::of(full.clone(), &read, Some(listing(&[("targets", 1)])));
        assert!(kept.roles.contains_key("targets") && !kept.roles.contains_key(&bin));
        let top = TopLevelRole::ALL.map(TopLevelRole::as_str);
        assert_eq!(kept.known(&top), ["root:r1", "targets:t1", "snapshot:s1"]);
        assert!(kept.known(&[&bin]).is_empty(), "bins are not kept");

        // Root and snapshot as kept, targets changed since (its bytes read).
        let targets = &full.roles["targets"];
        let files = vec![
            row("root", 1, "r1", None),
            row("targets", 1, "t2", Some(&targets.bytes)),
            row("snapshot", 7, "s1", None),
            row("timestamp", 9, "x", Some(b"{}")),
        ];
        let (mut current, mut listed, mut noted) = Default::default();
        kept.add_read(files, &mut current, &mut listed, &mut noted)
            .unwrap();
        let current: CurrentRepository = current;
        let signed_root = |c: &CurrentRepository| c.root.as_ref().map(|r| r.signed.clone());
        assert_eq!(signed_root(&current), signed_root(&full));
        assert_eq!(
            current.roles["targets"].metadata.signed,
            targets.metadata.signed
        );
        assert_eq!(
            (current.snapshot_version, current.timestamp_version),
            (Some(7), Some(9))
        );
        assert_eq!(listed, Some(listing(&[("targets", 1)])));
        assert_eq!(noted["targets"], "t2");
        assert_eq!(noted.len(), 4);
        // Taken out: a second read without bytes finds nothing kept.
        let again = kept.add_read(
            vec![row("root", 1, "r1", None)],
            &mut CurrentRepository::default(),
            &mut None,
            &mut BTreeMap::new(),
        );
        assert!(again.is_err());
        // What is not noted is left out.
        let mut partial = read.clone();
        partial.remove("targets");
        let kept = KeptCurrent::of(full, &partial, None);
        assert!(kept.roles.is_empty() && kept.root.is_some() && kept.snapshot.is_none());
    }
}
