//! What a `pull` hands back: the verified manifest written to a file, and
//! the report of where it came from and what signed it.

use crate::atomic_file::write_file_atomically;
use crate::registry::Pulled;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the manifest could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {}", path.display())]
pub struct WriteManifestError {
    pub path: PathBuf,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A pull, reported. Fields in name order: the JSON `pull -o json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// The signed target's `custom.annotations`.
    pub annotations: BTreeMap<String, String>,
    pub digest: String,
    pub gun: String,
    /// The manifest itself (its JSON, else its text) when it was not
    /// written to a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
    pub media_type: Option<String>,
    /// The registry base URL the manifest came from.
    pub registry: String,
    /// The repository name inside that registry.
    pub repository: String,
    /// The targets role that signed the tag.
    pub signed_by: String,
    pub size: u64,
    pub tag: String,
    pub written_to: Option<PathBuf>,
}

impl PullReport {
    /// The report of `pulled`, written to `written_to` or carrying the
    /// manifest.
    pub fn new(pulled: &Pulled, written_to: Option<&Path>) -> PullReport {
        let r = &pulled.resolution;
        PullReport {
            annotations: pulled.annotations.clone(),
            digest: r.digest.clone(),
            gun: r.gun.clone(),
            manifest: written_to
                .is_none()
                .then(|| manifest_value(&pulled.manifest)),
            media_type: r.media_type.clone(),
            registry: pulled.location.base.clone(),
            repository: pulled.location.name.clone(),
            signed_by: r.signed_by.clone(),
            size: r.size,
            tag: r.tag.clone(),
            written_to: written_to.map(Path::to_path_buf),
        }
    }
}

/// A manifest as a JSON value: parsed, or its (lossy) text if it is not JSON.
fn manifest_value(manifest: &[u8]) -> serde_json::Value {
    serde_json::from_slice(manifest).unwrap_or_else(|_| String::from_utf8_lossy(manifest).into())
}

/// Write the verified manifest of `pulled` to `path`, atomically (a reader
/// never sees half of it).
pub fn write_manifest(pulled: &Pulled, path: &Path) -> Result<(), WriteManifestError> {
    write_file_atomically(path, &pulled.manifest).map_err(|e| WriteManifestError {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::TrustSource;
    use crate::lookup::{Resolution, RoleState};
    use crate::registry::RegistryLocation;

    fn pulled(manifest: &[u8]) -> Pulled {
        let state = RoleState {
            version: 1,
            expires: chrono::Utc::now(),
        };
        Pulled {
            resolution: Resolution {
                gun: "acme/app".into(),
                tag: "v1".into(),
                digest: crate::registry::sha256_digest(manifest),
                size: manifest.len() as u64,
                media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
                signed_by: "ci".into(),
                trust: TrustSource::Stored,
                location: String::new(),
                root: state.clone(),
                timestamp: state.clone(),
                snapshot: state.clone(),
                targets: state,
                custom: None,
            },
            annotations: [("team".to_string(), "build".to_string())].into(),
            location: RegistryLocation {
                base: "http://127.0.0.1:5000".into(),
                name: "acme/app".into(),
            },
            manifest: manifest.to_vec(),
        }
    }

    #[test]
    fn a_report_without_a_file_carries_the_manifest() {
        let pulled = pulled(br#"{"schemaVersion":2}"#);
        let report = PullReport::new(&pulled, None);
        assert_eq!(
            report.manifest,
            Some(serde_json::json!({"schemaVersion": 2}))
        );
        assert_eq!(report.registry, "http://127.0.0.1:5000");
        assert_eq!(report.repository, "acme/app");
        assert_eq!(report.signed_by, "ci");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["written_to"], serde_json::Value::Null);
        assert_eq!(json["annotations"]["team"], "build");

        let not_json = PullReport::new(&self::pulled(b"plain text"), None);
        assert_eq!(not_json.manifest, Some("plain text".into()));
    }

    #[test]
    fn a_written_manifest_is_named_not_carried() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/manifest.json");
        let pulled = pulled(br#"{"schemaVersion":2}"#);
        write_manifest(&pulled, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), pulled.manifest);
        let report = PullReport::new(&pulled, Some(&path));
        assert_eq!(report.written_to.as_deref(), Some(path.as_path()));
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("manifest").is_none(), "{json}");
    }

    #[test]
    fn a_manifest_that_cannot_be_written_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let path = blocker.join("manifest.json");
        let err = write_manifest(&pulled(b"{}"), &path).unwrap_err();
        assert_eq!(err.to_string(), format!("writing {}", path.display()));
    }
}
