//! Signing the next version of a role this home holds the key of: a fresh
//! expiry (from the home's [`ExpiryPolicy`]) and signing time. Shared by
//! tag changes, key rotation, root staging and repository creation.

use crate::home::ExpiryPolicy;
use crate::publish_error::PublishError;
use chrono::{Duration, Utc};
use tagtrust_shared::keys::TufSigner;
use tagtrust_shared::{Metadata, Root, Targets};

/// Sign `targets` with a fresh expiry and signing time.
pub(crate) fn sign_targets(
    targets: Targets,
    key: &impl TufSigner,
    expiry: &ExpiryPolicy,
) -> Result<Vec<u8>, PublishError> {
    sign_targets_by(targets, &[key], expiry)
}

/// Sign `targets` with a fresh expiry and signing time by each of `keys`
/// (a threshold of them, or a Notary publisher's ECDSA keys).
pub(crate) fn sign_targets_by<K: TufSigner>(
    mut targets: Targets,
    keys: &[&K],
    expiry: &ExpiryPolicy,
) -> Result<Vec<u8>, PublishError> {
    let now = Utc::now();
    targets.expires =
        tagtrust_shared::metadata::whole_seconds(now + Duration::days(expiry.targets_days));
    tagtrust_shared::metadata::set_signed_at(&mut targets.extra, now);
    let mut md = Metadata::new(targets)?;
    for key in keys {
        md.sign(*key);
    }
    Ok(md.to_bytes())
}

/// The next version of `root` (a copy, or changed by the caller first) with
/// a fresh expiry and signing time, signed by `keys`.
pub(crate) fn renew_root<K: TufSigner>(
    root: &Root,
    keys: &[&K],
    expiry: &ExpiryPolicy,
) -> Result<Vec<u8>, PublishError> {
    let mut md = Metadata::new(next_root(root, expiry.root_days))?;
    for key in keys {
        md.sign(key);
    }
    Ok(md.to_bytes())
}

/// `root` with the next version, a fresh expiry and signing time.
pub(crate) fn next_root(root: &Root, root_days: i64) -> Root {
    let now = Utc::now();
    let mut next = root.clone();
    next.version = root.version + 1;
    next.expires = tagtrust_shared::metadata::whole_seconds(now + Duration::days(root_days));
    tagtrust_shared::metadata::set_signed_at(&mut next.extra, now);
    next
}
