//! `POST /v2/{gun}/_trust/mirror`: import a transparent mirror's copy of an
//! upstream repository (needs `admin:` on the GUN). The body is multipart
//! like a publish, one part per file named as the upstream serves it
//! (`{version}.{role}.json`), exact bytes. Verified by the import core
//! ([`crate::mirror`]) under the repository's lock, then stored as is in
//! one transaction; nothing is signed.

use super::publish::{read_parts, upload_permit, Limits};
use crate::auth::{self, Action};
use crate::error::ApiError;
use crate::mirror::{self, Held, ImportRefusal, Offered};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::{Gun, TopLevelRole};

/// How an import path ends.
pub(crate) const SUFFIX: &str = "/_trust/mirror";

/// One uploaded file's place: `{version}.{role}.json`.
struct FileName {
    role: String,
    version: u64,
}

impl std::fmt::Display for FileName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.json", self.version, self.role)
    }
}

fn file_name(filename: &str) -> Result<FileName, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "BAD_FILENAME",
            format!(
                "{:?} is not a versioned metadata file name ({{version}}.{{role}}.json)",
                filename.chars().take(300).collect::<String>()
            ),
        )
    };
    let stem = filename.strip_suffix(".json").ok_or_else(invalid)?;
    let (digits, role) = stem.split_once('.').ok_or_else(invalid)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let version = digits.parse::<u64>().map_err(|_| invalid())?;
    tagtrust_shared::pathmatch::validate_role_name(role).map_err(|_| invalid())?;
    if version == 0 {
        return Err(invalid());
    }
    Ok(FileName {
        role: role.to_string(),
        version,
    })
}

fn refused(refusal: ImportRefusal) -> ApiError {
    let (status, code) = match &refusal {
        ImportRefusal::Hosted => (StatusCode::CONFLICT, "HOSTED_HERE"),
        ImportRefusal::ChangedPastVersion { .. } | ImportRefusal::RolledBack { .. } => {
            (StatusCode::CONFLICT, "UPSTREAM_CONFLICT")
        }
        _ => (StatusCode::BAD_REQUEST, "UNTRUSTED_UPSTREAM"),
    };
    ApiError::new(status, code, refusal.to_string())
}

pub(crate) async fn import(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    gun: &Gun,
) -> Result<HttpResponse, ApiError> {
    auth::require(&state.storage, req, Action::Admin, gun.as_str()).await?;
    let _upload = upload_permit(state)?;
    let settings = &state.settings;
    let limits = Limits {
        body_bytes: settings.max_import_bytes,
        parts: settings.max_import_files,
        file_bytes: settings.max_file_bytes,
    };
    let offered: Vec<Offered> = read_parts(req, payload, settings, limits, file_name)
        .await?
        .into_iter()
        .map(|(name, bytes)| Offered {
            role: name.role,
            version: name.version,
            bytes,
        })
        .collect();

    let mut repo = state.storage.lock(gun.as_str()).await?;
    let versions = repo.stored_versions().await?;
    let hosted = repo.has_keys().await? || (!versions.is_empty() && !repo.is_mirrored().await?);
    let root = TopLevelRole::Root.as_str();
    let mut files = repo.all_versions(root).await?;
    files.extend(
        repo.current_files()
            .await?
            .into_iter()
            .filter(|f| f.role != root),
    );
    let held = Held::new(
        hosted,
        versions,
        files.into_iter().map(|f| (f.role, f.version, f.bytes)),
    );
    let offered_count = offered.len();
    let plan = mirror::plan_import(&held, offered, chrono::Utc::now()).map_err(|e| {
        tracing::info!(gun = %gun, error = %e, "mirror import refused");
        refused(e)
    })?;
    for file in &plan.store {
        repo.insert_metadata(&file.role, file.version, &file.bytes)
            .await?;
    }
    if !plan.store.is_empty() {
        repo.mark_mirrored().await?;
        repo.commit().await?;
        state
            .metrics
            .refresh_repository_expiries(&state.storage, gun.as_str())
            .await;
        tracing::info!(gun = %gun, stored = plan.store.len(), timestamp_version = plan.timestamp_version, "mirror import stored");
    }
    Ok(HttpResponse::Ok().json(json!({
        "gun": gun.as_str(),
        "offered": offered_count,
        "stored": plan.store.iter().map(|f| format!("{}.{}.json", f.version, f.role)).collect::<Vec<_>>(),
        "timestamp_version": plan.timestamp_version,
    })))
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn only_versioned_file_names_are_accepted() {
        let name = file_name("12.ci-robot.json").unwrap();
        assert_eq!((name.role.as_str(), name.version), ("ci-robot", 12));
        for bad in [
            "root.json",
            "0.root.json",
            "1.root",
            "x.root.json",
            "1..json",
            "1.a/b.json",
            "99999999999999999999999.root.json",
            "1.../x.json",
        ] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
    }
}
