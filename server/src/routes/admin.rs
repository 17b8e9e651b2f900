//! Administrative operations on a whole repository.

use crate::auth::Action;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::Gun;

/// `DELETE /v2/{gun}/_trust/tuf/`: remove every metadata version and every
/// server key of the repository (needs `admin`). Deleting what is not
/// there is a 200 too (`"deleted": false`), as notary-server answers it:
/// `notary delete --remote` treats anything else as a failure.
pub async fn delete(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
) -> Result<HttpResponse, ApiError> {
    state.auth.require(req, Action::Admin, gun.as_str()).await?;
    super::refuse_body(req)?;
    let deleted = state.storage.delete_repository(gun.as_str()).await?;
    if deleted {
        tracing::warn!(gun = %gun, "deleted repository trust data");
    }
    Ok(HttpResponse::Ok().json(json!({ "gun": gun.as_str(), "deleted": deleted })))
}
