//! What registry clients (the Notary CLI, Docker) expect of a server
//! before they touch trust data: the `GET /v2/` ping that tells them how to
//! authenticate, and the token realm `GET /auth/token` that trades a
//! tagtrust token (HTTP Basic password, any user name) for a registry
//! bearer token (see `registry_token`).

use crate::auth::registry_token::{grant, grant_catalog, parse_scope, CATALOG_SCOPE};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

/// The most `repository:` scopes one token may be asked for.
const MAX_SCOPES: usize = 32;

/// `GET /v2/`: 200 with any valid bearer token; otherwise 401 with the
/// challenge that names the realm. A registry client takes the challenge
/// from this ping only, so it is a 401 even where reads need no token:
/// a client that saw 200 here would never authenticate its writes.
pub async fn ping(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = state
        .auth
        .caller(&req, "registry", "registry:catalog:*")
        .await
        .map(|_| HttpResponse::Ok().json(serde_json::json!({})));
    super::respond(result)
}

/// `GET /auth/token?service=…&scope=repository:GUN:push,pull[&scope=…]`:
/// a bearer token granting what the Basic password's tagtrust token allows
/// of the scopes asked for; without credentials, an anonymous one (`pull`,
/// unless reads need a token). A wrong password is a 401 and no token.
pub async fn token(
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    super::respond(issue(&req, &query, &state).await)
}

async fn issue(
    req: &HttpRequest,
    query: &[(String, String)],
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let tokens = state.auth.tokens();
    if let Some((_, service)) = query.iter().find(|(k, _)| k == "service") {
        if service != tokens.service() {
            return Err(ApiError::bad_request(
                "INVALID_SERVICE",
                format!(
                    "this realm issues tokens for service {:?} only",
                    tokens.service()
                ),
            ));
        }
    }
    let scopes = || {
        query
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
    };
    let requested: Vec<_> = scopes().filter_map(parse_scope).collect();
    let wants_catalog = scopes().any(|s| s == CATALOG_SCOPE);
    // A registry client asks for one or two; each grant is carried in
    // every request's token.
    if requested.len() > MAX_SCOPES {
        return Err(ApiError::bad_request(
            "TOO_MANY_SCOPES",
            format!("at most {MAX_SCOPES} scopes per token"),
        ));
    }
    let issued = match basic_credentials(req)? {
        None => tokens.issue(
            "anonymous",
            None,
            grant(&requested, None, !state.settings.require_pull),
        ),
        Some((user, password)) => {
            if password.len() > 256 {
                return Err(wrong_password());
            }
            let row = state
                .storage
                .token_by_hash(&crate::auth::hash_token(&password))
                .await?
                .ok_or_else(wrong_password)?;
            tracing::info!(token_id = %row.id, user = %user, "issued a registry bearer token");
            let mut granted = grant(&requested, Some(&row.scopes), false);
            if wants_catalog {
                granted.extend(grant_catalog(&row.scopes));
            }
            tokens.issue(&user, Some(&row.id), granted)
        }
    }
    .map_err(|e| ApiError::internal(format!("signing a bearer token: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(issued))
}

fn wrong_password() -> ApiError {
    ApiError::unauthorized("the password is not a live tagtrust token")
        .with_challenge("Basic realm=\"tagtrust\"".into())
}

/// `Authorization: Basic base64(user:password)`, if given; a malformed one
/// is a 401.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ApiError> {
    let Some(encoded) = crate::auth::authorization(req, "Basic") else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "malformed Authorization header (expected: Basic base64(user:tagtrust-token))",
        )
        .with_challenge("Basic realm=\"tagtrust\"".into())
    };
    let encoded = encoded.ok_or_else(malformed)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(malformed)?;
    let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((user.to_string(), password.trim().to_string())))
}
