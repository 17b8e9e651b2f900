//! Administrative operations on a whole repository.

use crate::auth::{self, Action};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::Gun;

/// `DELETE /v2/{gun}/_trust/tuf/`: remove every metadata version and every
/// server key of the repository (needs `admin`).
pub async fn delete(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
) -> Result<HttpResponse, ApiError> {
    auth::require(&state.storage, req, Action::Admin, gun.as_str()).await?;
    super::refuse_body(req)?;
    if !state.storage.delete_repository(gun.as_str()).await? {
        return Err(ApiError::not_found(format!("no trust data for {gun}")));
    }
    tracing::warn!(gun = %gun, "deleted repository trust data");
    Ok(HttpResponse::Ok().json(json!({ "gun": gun.as_str(), "deleted": true })))
}
