//! What `tag set` signs: a digest and size given by hand, or what the tag
//! points to in a registry now, with the signer's `KEY=VALUE` annotations
//! added to (and overriding) the registry's.

use crate::fetch::HttpOptions;
use crate::home::RegistryConfig;
use crate::publisher::{TagTarget, OCI_MANIFEST};
use crate::registry::{self, Descriptor, RegistryClient};
use tagtrust_shared::ImageReference;

/// A registry error, kept with its causes.
type RegistryError = Box<dyn std::error::Error + Send + Sync>;

/// Why the target could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TagTargetError {
    #[error("--annotation {0:?} is not KEY=VALUE")]
    Annotation(String),
    #[error("reading {reference} from {base}")]
    Describe {
        reference: String,
        base: String,
        #[source]
        source: RegistryError,
    },
    /// The registry could not be located or its client not built.
    #[error(transparent)]
    Registry(RegistryError),
}

/// Where the digest, size and media type come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSource {
    /// Given by the signer; the media type defaults to [`OCI_MANIFEST`].
    Given {
        digest: String,
        size: u64,
        media_type: Option<String>,
    },
    /// What the tag points to in the registry at this base URL.
    Registry(String),
}

/// Split a `KEY=VALUE` annotation (the key not empty; the value may hold `=`).
pub fn parse_annotation(text: &str) -> Result<(String, String), TagTargetError> {
    text.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .ok_or_else(|| TagTargetError::Annotation(text.to_string()))
}

/// The target a registry descriptor describes, its annotations included.
pub fn from_descriptor(descriptor: Descriptor) -> TagTarget {
    TagTarget {
        digest: descriptor.digest,
        size: descriptor.size,
        media_type: descriptor.media_type,
        annotations: descriptor.annotations,
    }
}

/// Add `annotations` (`KEY=VALUE`) to `target`, replacing any of the same key.
pub fn annotate(
    mut target: TagTarget,
    annotations: &[String],
) -> Result<TagTarget, TagTargetError> {
    for annotation in annotations {
        let (key, value) = parse_annotation(annotation)?;
        target.annotations.insert(key, value);
    }
    Ok(target)
}

/// How `tag set` reads a registry: the token realms of the home's
/// configuration, the caller's credentials and HTTP limits.
pub struct RegistryAccess<'a> {
    pub config: &'a RegistryConfig,
    pub credentials: Option<(String, String)>,
    pub http: &'a HttpOptions,
}

/// What `tag set` signs for `reference`: from `source`, then `annotations`
/// on top. Reading the registry goes through `registry`.
pub fn tag_target(
    reference: &ImageReference,
    source: TargetSource,
    annotations: &[String],
    registry: &RegistryAccess,
) -> Result<TagTarget, TagTargetError> {
    let target = match source {
        TargetSource::Given {
            digest,
            size,
            media_type,
        } => TagTarget {
            digest,
            size,
            media_type: media_type.unwrap_or_else(|| OCI_MANIFEST.to_string()),
            annotations: Default::default(),
        },
        TargetSource::Registry(url) => from_descriptor(describe(reference, &url, registry)?),
    };
    annotate(target, annotations)
}

fn registry_error(error: impl Into<RegistryError>) -> TagTargetError {
    TagTargetError::Registry(error.into())
}

/// What `reference`'s tag points to in the registry at `url` now.
fn describe(
    reference: &ImageReference,
    url: &str,
    access: &RegistryAccess,
) -> Result<Descriptor, TagTargetError> {
    let location = registry::locate(&reference.gun, Some(url)).map_err(registry_error)?;
    RegistryClient::for_location(
        &location,
        access.config,
        access.credentials.clone(),
        access.http,
    )
    .map_err(registry_error)?
    .describe(&location.name, &reference.tag)
    .map_err(|e| TagTargetError::Describe {
        reference: reference.to_string(),
        base: location.base.clone(),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn reference() -> ImageReference {
        ImageReference::parse("acme/app:v1").unwrap()
    }

    fn given(media_type: Option<&str>) -> TargetSource {
        TargetSource::Given {
            digest: DIGEST.into(),
            size: 7,
            media_type: media_type.map(str::to_string),
        }
    }

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A registry reader with the defaults: no credentials, default limits.
    fn no_registry() -> RegistryAccess<'static> {
        static CONFIG: std::sync::OnceLock<(RegistryConfig, HttpOptions)> =
            std::sync::OnceLock::new();
        let (config, http) = CONFIG.get_or_init(Default::default);
        RegistryAccess {
            config,
            credentials: None,
            http,
        }
    }

    #[test]
    fn a_given_digest_defaults_to_the_oci_manifest_type() {
        let target = tag_target(&reference(), given(None), &[], &no_registry()).unwrap();
        assert_eq!(target.digest, DIGEST);
        assert_eq!(target.size, 7);
        assert_eq!(target.media_type, OCI_MANIFEST);
        assert!(target.annotations.is_empty());

        let docker = "application/vnd.docker.distribution.manifest.v2+json";
        let target = tag_target(&reference(), given(Some(docker)), &[], &no_registry()).unwrap();
        assert_eq!(target.media_type, docker);
    }

    #[test]
    fn annotations_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_annotation("org.opencontainers.image.source=https://x/?a=b").unwrap(),
            (
                "org.opencontainers.image.source".to_string(),
                "https://x/?a=b".to_string()
            )
        );
        assert_eq!(
            parse_annotation("empty=").unwrap(),
            ("empty".to_string(), String::new())
        );
        for bad in ["no-equals", "=value", ""] {
            let err = parse_annotation(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--annotation {bad:?} is not KEY=VALUE")
            );
        }
    }

    #[test]
    fn given_annotations_override_the_registry_ones() {
        let descriptor = Descriptor {
            digest: DIGEST.into(),
            size: 9,
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            annotations: annotations(&[("team", "build"), ("stage", "dev")]),
        };
        let target = annotate(
            from_descriptor(descriptor.clone()),
            &["stage=prod".into(), "reviewed=yes".into()],
        )
        .unwrap();
        assert_eq!(target.digest, descriptor.digest);
        assert_eq!(target.size, 9);
        assert_eq!(target.media_type, descriptor.media_type);
        assert_eq!(
            target.annotations,
            annotations(&[("reviewed", "yes"), ("stage", "prod"), ("team", "build")])
        );
    }

    #[test]
    fn a_bad_annotation_refuses_the_whole_target() {
        let err = tag_target(
            &reference(),
            given(None),
            &["ok=1".into(), "broken".into()],
            &no_registry(),
        )
        .unwrap_err();
        assert!(matches!(err, TagTargetError::Annotation(a) if a == "broken"));
    }

    #[test]
    fn a_registry_url_must_be_http() {
        let err = tag_target(
            &reference(),
            TargetSource::Registry("ftp://registry.example".into()),
            &[],
            &no_registry(),
        )
        .unwrap_err();
        assert!(matches!(err, TagTargetError::Registry(_)), "{err}");
        assert!(err.to_string().contains("must start with http"), "{err}");
    }
}
