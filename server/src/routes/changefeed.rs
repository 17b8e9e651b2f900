//! `GET /v2/_trust/changefeed` (every repository the token may pull) and
//! `GET /v2/{gun}/_trust/changefeed` (one repository; anonymous when reads
//! are). The query and the answer are Notary v1's (see
//! [`crate::changefeed`]).

use crate::auth::registry_token::CATALOG;
use crate::auth::{self, Action};
use crate::changefeed::{FeedPage, FeedQuery, FeedScope};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use tagtrust_shared::Gun;

/// The path of the global feed.
pub(crate) const GLOBAL: &str = "/v2/_trust/changefeed";
/// How a repository's feed path ends.
pub(crate) const PER_GUN_SUFFIX: &str = "/_trust/changefeed";

/// The global feed: a token is required (the feed names repositories),
/// and it sees the records of the repositories its scopes cover: all of
/// them with a registry JWT granting `registry:catalog:*`, as
/// notary-server answers.
pub(crate) async fn global(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    let token = state
        .auth
        .caller(req, "changefeed", "registry:catalog:*")
        .await?;
    let globs = auth::pull_globs(&token.scopes);
    let catalog = token.scopes.iter().any(|s| s == CATALOG);
    let scope = if catalog || globs.contains(&"*") {
        FeedScope::All
    } else if globs.is_empty() {
        return Err(ApiError::forbidden(format!(
            "token {} may pull no repository",
            token.id
        )));
    } else {
        FeedScope::Matching(globs.into_iter().map(str::to_string).collect())
    };
    page(req, state, &scope).await
}

/// One repository's feed (empty until its first publish).
pub(crate) async fn repository(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
) -> Result<HttpResponse, ApiError> {
    if state.settings.require_pull {
        state.auth.require(req, Action::Pull, gun.as_str()).await?;
    }
    page(req, state, &FeedScope::Gun(gun.as_str().to_string())).await
}

async fn page(
    req: &HttpRequest,
    state: &AppState,
    scope: &FeedScope,
) -> Result<HttpResponse, ApiError> {
    let params = web_query(req)?;
    let query = FeedQuery::parse(params.change_id.as_deref(), params.records.as_deref())
        .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.to_string()))?;
    let records = state.storage.changes(scope, query).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(FeedPage::new(records)))
}

#[derive(serde::Deserialize)]
struct Params {
    change_id: Option<String>,
    records: Option<String>,
}

fn web_query(req: &HttpRequest) -> Result<Params, ApiError> {
    actix_web::web::Query::<Params>::from_query(req.query_string())
        .map(actix_web::web::Query::into_inner)
        .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.to_string()))
}
