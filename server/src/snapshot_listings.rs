//! What a stored snapshot lists, kept in memory: each recently signed
//! snapshot's roles and versions ([`ListedVersions`]), by the sha256 of the
//! snapshot file, least recently used evicted first, within a byte budget
//! (an eighth of `--file-cache-bytes`; 0 keeps none).
//!
//! A publish into a repository of hashed bins reads the stored snapshot to
//! learn which bins there are and their versions, and parsing its 1,025
//! entries (35 KB) was a twentieth of the publish. The snapshot it reads
//! is the one the previous publish signed, so that publish leaves its
//! listing here ([`crate::routes::publish::sign_and_commit`]) and the next
//! one, in this process, takes it out instead of parsing (out, not a copy:
//! it signs a snapshot of its own, and copying 1,025 names cost a third of
//! the parse). Keyed by content, an entry is never stale: nothing has to
//! invalidate it. A publish in another process, after a re-sign, or after
//! a refused publish took the entry, finds none and parses the file.

use crate::budget_lru::{BudgetLru, Cost};

/// A snapshot's `meta` as (role, version) in file order, role names
/// without `.json` (an entry without it is left out: not a role). A list,
/// not a map: building a map of 1,025 bins only to walk it once was a
/// tenth of a binned publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListedVersions(pub(crate) Vec<(String, u64)>);

impl ListedVersions {
    /// From `meta` entries as (file name, version), in order: what parsing
    /// a snapshot with these entries gives.
    pub(crate) fn from_entries(entries: impl IntoIterator<Item = (String, u64)>) -> Self {
        ListedVersions(
            entries
                .into_iter()
                .filter_map(|(mut name, version)| {
                    // The role's name in place: no copy per listed bin.
                    let role = name.strip_suffix(".json")?.len();
                    name.truncate(role);
                    Some((name, version))
                })
                .collect(),
        )
    }
}

impl<'de> serde::Deserialize<'de> for ListedVersions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A `meta` entry's version, all a listing reads of it.
        #[derive(serde::Deserialize)]
        struct ListedVersion {
            version: u64,
        }
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = ListedVersions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("snapshot meta entries")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ListedVersions, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, file)) = map.next_entry::<String, ListedVersion>()? {
                    entries.push((name, file.version));
                }
                Ok(ListedVersions::from_entries(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// What an entry costs beyond its roles (key, bookkeeping).
const OVERHEAD: usize = 128;

/// The listings, by the sha256 of the snapshot file.
pub(crate) type SnapshotListings = BudgetLru<ListedVersions>;

impl Cost for ListedVersions {
    /// Roughly: each role's string and slot.
    fn cost(&self) -> usize {
        OVERHEAD
            + self
                .0
                .iter()
                .map(|(role, _)| role.capacity() + std::mem::size_of::<(String, u64)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(roles: &[(&str, u64)]) -> ListedVersions {
        ListedVersions(roles.iter().map(|(r, v)| (r.to_string(), *v)).collect())
    }

    #[test]
    fn entries_are_listed_as_parsing_lists_them() {
        let meta = r#"{"targets.json":{"version":3},"bins-0.json":{"version":1,"length":9},"notes.txt":{"version":2}}"#;
        let parsed: ListedVersions = serde_json::from_str(meta).unwrap();
        assert_eq!(parsed, listing(&[("targets", 3), ("bins-0", 1)]));
        let built = ListedVersions::from_entries([
            ("targets.json".to_string(), 3),
            ("bins-0.json".to_string(), 1),
            ("notes.txt".to_string(), 2),
        ]);
        assert_eq!(built, parsed);
    }

    #[test]
    fn a_kept_listing_is_taken_once_by_its_snapshot_sha256() {
        let listings = SnapshotListings::new(1 << 20);
        assert_eq!(listings.take("aa"), None);
        listings.put("aa", listing(&[("targets", 1)]));
        assert_eq!(listings.take("bb"), None);
        assert_eq!(listings.take("aa"), Some(listing(&[("targets", 1)])));
        assert_eq!(listings.take("aa"), None);
        assert_eq!(listings.bytes(), 0);
    }
}
