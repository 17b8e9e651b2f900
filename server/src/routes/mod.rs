//! HTTP routes. A GUN contains `/`, so everything under `/v2/` is routed to
//! one place and split here at `/_trust/tuf/`, from the raw (undecoded)
//! path: a `%2F` or `%2E%2E` in a GUN must be refused, not decoded into a
//! different name.

pub mod admin;
pub mod changefeed;
mod expiring;
pub mod health;
pub mod keys;
pub mod mirror;
pub mod publish;
pub mod read;
pub mod registry;
pub mod tags;

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::Gun;

const TUF_DIR: &str = "/_trust/tuf/";

/// What a `/v2/{gun}/_trust/tuf/{file}` path names.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// The repository itself (`…/_trust/tuf/`): publish and delete.
    Repository,
    /// A server-managed key (`{role}.key`).
    Key(String),
    /// A metadata file.
    File(FileRef),
}

#[derive(Debug, PartialEq, Eq)]
pub enum FileRef {
    Current(String),
    Version(String, u64),
    Sha256(String, String),
}

impl FileRef {
    pub fn role(&self) -> &str {
        match self {
            FileRef::Current(r) | FileRef::Version(r, _) | FileRef::Sha256(r, _) => r,
        }
    }
}

fn invalid_role(name: &str, e: tagtrust_shared::Error) -> ApiError {
    ApiError::bad_request("INVALID_ROLE", e.to_string())
        .with_detail(json!({ "role": name.chars().take(300).collect::<String>() }))
}

/// `{N}.{role}.json`, `{role}.{sha256}.json` or `{role}.json` (without `.json`).
fn parse_file(stem: &str) -> Result<FileRef, ApiError> {
    let file =
        if let Some((digits, role)) = stem.split_once('.').filter(|(d, r)| {
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !r.is_empty()
        }) {
            let version = digits
                .parse::<u64>()
                .map_err(|_| ApiError::not_found(format!("no version {digits}")))?;
            FileRef::Version(role.to_string(), version)
        } else if let Some((role, hash)) = stem.rsplit_once('.').filter(|(r, h)| {
            !r.is_empty() && h.len() == 64 && tagtrust_shared::hashes::is_lower_hex(h)
        }) {
            FileRef::Sha256(role.to_string(), hash.to_string())
        } else {
            FileRef::Current(stem.to_string())
        };
    validate_role(file.role())?;
    Ok(file)
}

/// A role name in a path: a spec-TUF one (no `/`), or a Notary delegation
/// (`targets/…`, which has). Which a repository holds is its dialect's
/// business: a name of the other dialect is simply not found there.
fn validate_role(role: &str) -> Result<(), ApiError> {
    if tagtrust_shared::notary::is_delegation_name(role) {
        return Ok(());
    }
    tagtrust_shared::pathmatch::validate_role_name(role).map_err(|e| invalid_role(role, e))
}

fn parse_gun(gun: &str) -> Result<Gun, ApiError> {
    Gun::parse(gun).map_err(|e| {
        ApiError::bad_request("INVALID_GUN", e.to_string())
            .with_detail(json!({ "gun": gun.chars().take(300).collect::<String>() }))
    })
}

/// Split a raw request path into the GUN and what it names.
pub fn parse_path(raw: &str) -> Result<(Gun, Target), ApiError> {
    let rest = raw
        .strip_prefix("/v2/")
        .ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    let (gun, file) = rest
        .split_once(TUF_DIR)
        .ok_or_else(|| ApiError::not_found("no such endpoint (expected /v2/{gun}/_trust/tuf/…)"))?;
    let gun = parse_gun(gun)?;
    if file.is_empty() {
        return Ok((gun, Target::Repository));
    }
    let decoded = percent_encoding::percent_decode_str(file)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("INVALID_ROLE", "file name is not UTF-8"))?;
    if let Some(role) = decoded.strip_suffix(".key") {
        validate_role(role)?;
        return Ok((gun, Target::Key(role.to_string())));
    }
    if let Some(stem) = decoded.strip_suffix(".json") {
        return Ok((gun, Target::File(parse_file(stem)?)));
    }
    Err(ApiError::not_found(
        "no such file (expected {role}.json, {version}.{role}.json, {role}.{sha256}.json or {role}.key)",
    ))
}

/// Turn a refusal into its JSON response here rather than handing it to the
/// middleware as an error (which actix would log, every 404 at the normal
/// end of a client's root walk among them). Server faults are logged where
/// they happen, and `startup.rs::observe` logs each 5xx.
pub(crate) fn respond(result: Result<HttpResponse, ApiError>) -> HttpResponse {
    use actix_web::ResponseError;
    result.unwrap_or_else(|e| e.error_response())
}

/// Every request outside the fixed paths of `startup.rs`: under `/v2/`, by
/// method (a GUN has slashes, so the rest of the path is split by
/// [`parse_path`] and the special suffixes here, not by the router);
/// anything else is a JSON 404.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    use actix_web::http::Method;
    if !req.path().starts_with("/v2/") {
        return not_found().await;
    }
    respond(match *req.method() {
        Method::GET => get_inner(&req, &state).await,
        Method::POST => post_inner(&req, payload, &state).await,
        Method::DELETE => delete_inner(&req, &state).await,
        _ => Err(ApiError::not_found("no such endpoint")),
    })
}

async fn get_inner(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    let path = req.uri().path();
    if path == changefeed::GLOBAL {
        return changefeed::global(req, state).await;
    }
    if path == expiring::PATH {
        return expiring::list(req, state).await;
    }
    if let Some(gun) = path
        .strip_prefix("/v2/")
        .and_then(|rest| rest.strip_suffix(changefeed::PER_GUN_SUFFIX))
    {
        return changefeed::repository(req, state, &parse_gun(gun)?).await;
    }
    match parse_path(path)? {
        (gun, Target::File(file)) => read::metadata(req, state, &gun, file).await,
        (gun, Target::Key(role)) => keys::key(req, state, &gun, &role).await,
        (_, Target::Repository) => Err(method_not_allowed("POST (publish) or DELETE")),
    }
}

async fn post_inner(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let path = req.uri().path();
    if let Some(gun) = path
        .strip_prefix("/v2/")
        .and_then(|rest| rest.strip_suffix(mirror::SUFFIX))
    {
        return mirror::import(req, payload, state, &parse_gun(gun)?).await;
    }
    if let Some(gun) = path
        .strip_prefix("/v2/")
        .and_then(|rest| rest.strip_suffix(tags::SUFFIX))
    {
        return tags::change(req, payload, state, &parse_gun(gun)?).await;
    }
    match parse_path(path)? {
        (gun, Target::Repository) => publish::publish(req, payload, state, &gun).await,
        (gun, Target::Key(role)) => keys::key(req, state, &gun, &role).await,
        (_, Target::File(_)) => Err(method_not_allowed("GET")),
    }
}

async fn delete_inner(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    match parse_path(req.uri().path())? {
        (gun, Target::Repository) => admin::delete(req, state, &gun).await,
        _ => Err(method_not_allowed("GET")),
    }
}

/// Refuse a request body on an endpoint that takes none (key rotation,
/// delete): a body there is a confused or hostile client, and acting on the
/// request while ignoring what it sent would change state it did not mean.
/// An empty body (`Content-Length: 0` or none at all) is the normal case.
pub(crate) fn refuse_body(req: &HttpRequest) -> Result<(), ApiError> {
    use actix_web::http::header;
    let headers = req.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()));
    let has_body = match declared {
        Some(Some(0)) => false,
        Some(_) => true,
        None => headers.contains_key(header::TRANSFER_ENCODING),
    };
    if has_body {
        return Err(ApiError::bad_request(
            "UNEXPECTED_BODY",
            format!("{} {} takes no request body", req.method(), req.path()),
        ));
    }
    Ok(())
}

fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("method not allowed here; use {allowed}"),
    )
}

/// Anything else: a JSON 404.
pub async fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::not_found("no such endpoint").error_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(raw: &str) -> Target {
        parse_path(raw).unwrap().1
    }

    #[test]
    fn paths() {
        let (gun, t) = parse_path("/v2/r.io/acme/app/_trust/tuf/").unwrap();
        assert_eq!(gun.as_str(), "r.io/acme/app");
        assert_eq!(t, Target::Repository);
        assert_eq!(
            file("/v2/a/_trust/tuf/root.json"),
            Target::File(FileRef::Current("root".into()))
        );
        assert_eq!(
            file("/v2/a/_trust/tuf/12.root.json"),
            Target::File(FileRef::Version("root".into(), 12))
        );
        let hash = "ab".repeat(32);
        assert_eq!(
            file(&format!("/v2/a/_trust/tuf/targets.{hash}.json")),
            Target::File(FileRef::Sha256("targets".into(), hash.clone()))
        );
        assert_eq!(
            file("/v2/a/_trust/tuf/ci%2Drobot.json"),
            Target::File(FileRef::Current("ci-robot".into()))
        );
        assert_eq!(
            file("/v2/a/_trust/tuf/timestamp.key"),
            Target::Key("timestamp".into())
        );
        // Notary's delegations have slashes in their names.
        assert_eq!(
            file(&format!("/v2/a/_trust/tuf/targets/releases.{hash}.json")),
            Target::File(FileRef::Sha256("targets/releases".into(), hash.clone()))
        );
        assert_eq!(
            file("/v2/a/_trust/tuf/3.targets/a/b.json"),
            Target::File(FileRef::Version("targets/a/b".into(), 3))
        );
    }

    #[test]
    fn bodies_are_refused_where_none_is_expected() {
        use actix_web::test::TestRequest;
        let ok = [
            TestRequest::post().to_http_request(),
            TestRequest::post()
                .insert_header(("content-length", "0"))
                .to_http_request(),
        ];
        for req in ok {
            refuse_body(&req).unwrap();
        }
        let refused = [
            TestRequest::post()
                .insert_header(("content-length", "3"))
                .to_http_request(),
            TestRequest::post()
                .insert_header(("content-length", "x"))
                .to_http_request(),
            TestRequest::delete()
                .insert_header(("transfer-encoding", "chunked"))
                .to_http_request(),
        ];
        for req in refused {
            let err = refuse_body(&req).unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (400, "UNEXPECTED_BODY"));
        }
    }

    #[test]
    fn hostile_paths() {
        for bad in [
            "/v2/a/../b/_trust/tuf/root.json",
            "/v2/a%2Fb/_trust/tuf/root.json",
            "/v2/a%00/_trust/tuf/root.json",
            "/v2//_trust/tuf/root.json",
            "/v2/a/_trust/tuf/%2E%2E.json",
            "/v2/a/_trust/tuf/x%2Fy.json",
            "/v2/a/_trust/tuf/targets/.json",
            "/v2/a/_trust/tuf/targets//x.json",
            "/v2/a/_trust/tuf/targets/A.json",
            "/v2/a/_trust/tuf/.json",
        ] {
            let err = parse_path(bad).unwrap_err();
            assert_eq!(err.status, 400, "{bad}");
        }
        assert_eq!(
            parse_path(&format!("/v2/{}/_trust/tuf/", "a".repeat(300)))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse_path("/v2/a/_trust/tuf/root.txt").unwrap_err().status,
            404
        );
    }
}
