//! `POST /v2/{gun}/_trust/mirror`: import a transparent mirror's copy of an
//! upstream repository (needs `admin:` on the GUN). The body is multipart
//! like a publish, one part per file named as the upstream serves it
//! (`{version}.{role}.json`), exact bytes. Verified by the import core
//! ([`crate::mirror`]) under the repository's lock, then stored as is in
//! one transaction ([`crate::mirror::store_import`], which
//! `tagtrust-server import` uses too); nothing is signed.

use super::publish::{read_parts, upload_permit, Limits};
use crate::auth::Action;
use crate::error::ApiError;
use crate::mirror::{self, ImportRefusal, Offered, StoreError};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::export::{parse_file_name, FileKind};
use tagtrust_shared::Gun;

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
    match parse_file_name(filename) {
        Some(FileKind::Version { role, version }) => Ok(FileName { role, version }),
        _ => Err(ApiError::bad_request(
            "BAD_FILENAME",
            format!(
                "{:?} is not a versioned metadata file name ({{version}}.{{role}}.json)",
                filename.chars().take(300).collect::<String>()
            ),
        )),
    }
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
    state.auth.require(req, Action::Admin, gun.as_str()).await?;
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

    let offered_count = offered.len();
    let plan = mirror::store_import(&state.storage, gun, offered, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::Refused(refusal) => {
                tracing::info!(gun = %gun, error = %refusal, "mirror import refused");
                refused(refusal)
            }
            StoreError::Storage(e) => e.into(),
        })?;
    if !plan.store.is_empty() {
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
