//! The names of the four top-level roles, as a type. Delegated role names
//! are chosen by publishers and stay strings; these four are fixed by TUF,
//! and two of them (timestamp and snapshot) are signed online, by whoever
//! holds the repository's online keys (the tagtrust server).

use std::fmt;
use std::str::FromStr;

/// One of the roles a root lists keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopLevelRole {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

/// A name that is not one of the four top-level roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a top-level role (root, targets, snapshot or timestamp)")]
pub struct NotTopLevel(pub String);

impl TopLevelRole {
    /// All four, in the order TUF lists them.
    pub const ALL: [TopLevelRole; 4] = [
        TopLevelRole::Root,
        TopLevelRole::Targets,
        TopLevelRole::Snapshot,
        TopLevelRole::Timestamp,
    ];

    /// The roles signed online (by the server), timestamp first.
    pub const ONLINE: [TopLevelRole; 2] = [TopLevelRole::Timestamp, TopLevelRole::Snapshot];

    /// The role's name as metadata and file names spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            TopLevelRole::Root => "root",
            TopLevelRole::Targets => "targets",
            TopLevelRole::Snapshot => "snapshot",
            TopLevelRole::Timestamp => "timestamp",
        }
    }

    /// The top-level role called `name`, if it is one.
    pub fn parse(name: &str) -> Option<TopLevelRole> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Is this role signed online (timestamp, snapshot) rather than by
    /// the publisher's offline keys (root, targets)?
    pub const fn is_online(self) -> bool {
        matches!(self, TopLevelRole::Timestamp | TopLevelRole::Snapshot)
    }

    /// Is `name` the name of an online role? (A delegated role can never
    /// be one: top-level names are not delegable.)
    pub fn is_online_name(name: &str) -> bool {
        Self::parse(name).is_some_and(Self::is_online)
    }

    /// `{role}.json`: the current version's file name.
    pub fn file_name(self) -> String {
        format!("{}.json", self.as_str())
    }
}

impl FromStr for TopLevelRole {
    type Err = NotTopLevel;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name).ok_or_else(|| NotTopLevel(name.to_string()))
    }
}

impl fmt::Display for TopLevelRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for TopLevelRole {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// So a role name read from storage or a request compares with a
/// top-level role directly (`file.role == TopLevelRole::Root`).
impl PartialEq<TopLevelRole> for str {
    fn eq(&self, role: &TopLevelRole) -> bool {
        self == role.as_str()
    }
}

impl PartialEq<TopLevelRole> for &str {
    fn eq(&self, role: &TopLevelRole) -> bool {
        *self == role.as_str()
    }
}

impl PartialEq<TopLevelRole> for String {
    fn eq(&self, role: &TopLevelRole) -> bool {
        self == role.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in TopLevelRole::ALL {
            assert_eq!(role.as_str().parse::<TopLevelRole>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
            assert_eq!(role.file_name(), format!("{role}.json"));
        }
        assert_eq!(
            TopLevelRole::ALL.map(TopLevelRole::as_str),
            ["root", "targets", "snapshot", "timestamp"]
        );
    }

    #[test]
    fn other_names_are_not_top_level() {
        for name in [
            "",
            "Root",
            "targets.json",
            "dev",
            "timestamp ",
            "snapshot-1",
        ] {
            assert_eq!(TopLevelRole::parse(name), None, "{name:?}");
            assert_eq!(
                name.parse::<TopLevelRole>(),
                Err(NotTopLevel(name.to_string()))
            );
            assert!(!TopLevelRole::is_online_name(name), "{name:?}");
        }
    }

    #[test]
    fn timestamp_and_snapshot_are_online() {
        let online: Vec<_> = TopLevelRole::ALL
            .into_iter()
            .filter(|r| r.is_online())
            .collect();
        assert_eq!(online, [TopLevelRole::Snapshot, TopLevelRole::Timestamp]);
        assert!(TopLevelRole::ONLINE.iter().all(|r| online.contains(r)));
        assert!(TopLevelRole::is_online_name("timestamp"));
        assert!(TopLevelRole::is_online_name("snapshot"));
        assert!(!TopLevelRole::is_online_name("root"));
        assert!(!TopLevelRole::is_online_name("targets"));
    }

    #[test]
    fn compares_with_role_names() {
        assert!("root" == TopLevelRole::Root);
        let stored = String::from("targets");
        assert!(stored == TopLevelRole::Targets);
        assert!(*"snapshot" == TopLevelRole::Snapshot);
        assert!("timestamp" != TopLevelRole::Snapshot);
    }
}
