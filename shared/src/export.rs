//! The air-gapped export layout (`tagtrust export`, `tagtrust-server
//! import`): where each file of a GUN's history lies, and the manifest that
//! lists them.
//!
//! The layout is the server's own URL space, so a static web server whose
//! root is the export serves `{root}/v2/{gun}/_trust/tuf/{N}.{role}.json`
//! (and the current `{role}.json`) at the URLs a TUF client asks for. Role
//! names are validated role names (no `/`, no leading `.`), which is also
//! what keeps every file inside its GUN's directory.
//!
//! The manifest only says what is inside, with checksums, so a damaged or
//! edited transfer is noticed before anything is parsed; trust never comes
//! from it: an importer verifies the signed metadata itself.

use crate::Gun;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The manifest's file name, at the export's top.
pub const MANIFEST_FILE: &str = "tagtrust-export.json";

/// The manifest format this code writes and reads.
pub const FORMAT: u32 = 1;

/// `tagtrust-export.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub created_at: DateTime<Utc>,
    /// The server the files were read from.
    pub upstream: String,
    pub guns: Vec<ExportedGun>,
}

/// One GUN's files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportedGun {
    pub gun: String,
    /// The version of the exported `timestamp.json`.
    pub timestamp_version: u64,
    pub files: Vec<ExportedFile>,
}

/// One file, by its path from the export's top.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportedFile {
    pub path: String,
    pub sha256: String,
    pub length: u64,
}

/// `v2/{gun}/_trust/tuf/`: the directory of a GUN's files, from the top.
pub fn gun_dir(gun: &Gun) -> String {
    format!("v2/{gun}/_trust/tuf/")
}

/// The path of file `name` (`{N}.{role}.json` or `{role}.json`) of `gun`.
pub fn file_path(gun: &Gun, name: &str) -> String {
    format!("{}{name}", gun_dir(gun))
}

/// What a file of a GUN's directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// `{N}.{role}.json`, N ≥ 1.
    Version { role: String, version: u64 },
    /// `{role}.json`: the current version, as the server serves it.
    Current { role: String },
}

/// Classify `path` as a file of `gun`'s directory, or `None` when it is not
/// one (another directory, a nested path, an invalid role name).
pub fn file_kind(gun: &Gun, path: &str) -> Option<FileKind> {
    parse_file_name(path.strip_prefix(&gun_dir(gun))?)
}

/// What a metadata file name (`{N}.{role}.json` or `{role}.json`) names,
/// or `None` when it is neither (version 0 or too large, an invalid role
/// name such as one with a `/`).
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    let stem = name.strip_suffix(".json")?;
    let kind = match stem.split_once('.') {
        Some((digits, role))
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let version = digits.parse::<u64>().ok().filter(|&v| v > 0)?;
            FileKind::Version {
                role: role.to_string(),
                version,
            }
        }
        _ => FileKind::Current {
            role: stem.to_string(),
        },
    };
    let role = match &kind {
        FileKind::Version { role, .. } | FileKind::Current { role } => role,
    };
    crate::pathmatch::validate_role_name(role).ok()?;
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_stay_in_their_gun_directory() {
        let gun = Gun::parse("registry.example.com/acme/app").unwrap();
        let dir = gun_dir(&gun);
        assert_eq!(dir, "v2/registry.example.com/acme/app/_trust/tuf/");
        assert_eq!(
            file_kind(&gun, &format!("{dir}3.ci-robot.json")),
            Some(FileKind::Version {
                role: "ci-robot".into(),
                version: 3
            })
        );
        assert_eq!(
            file_kind(&gun, &format!("{dir}timestamp.json")),
            Some(FileKind::Current {
                role: "timestamp".into()
            })
        );
        for bad in [
            format!("{dir}0.root.json"),
            format!("{dir}1.a/b.json"),
            format!("{dir}../x.json"),
            format!("{dir}1.root"),
            "v2/registry.example.com/acme/other/_trust/tuf/1.root.json".to_string(),
            "tagtrust-export.json".to_string(),
        ] {
            assert_eq!(file_kind(&gun, &bad), None, "{bad}");
        }
    }
}
