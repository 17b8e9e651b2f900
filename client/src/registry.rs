//! An OCI distribution (registry v2) client for what tagtrust needs: fetch a
//! manifest by digest and check it against the signed target before anyone
//! sees it (`pull`), and describe what a tag points to in the registry right
//! now (`tag set --from-registry`).
//!
//! A consumer never resolves a tag through the registry: [`pull`]
//! only asks for a digest TUF has already vouched for, and the bytes are
//! refused unless their sha256 and size match the signed target. Reading
//! stops one byte past the signed size, so an endless or oversized answer
//! cannot exhaust memory.
//!
//! Registries that answer 401 with a `Bearer` challenge get the standard
//! token flow: a token is fetched from the challenge's realm (anonymously, or
//! with `TAGTRUST_REGISTRY_USER` / `TAGTRUST_REGISTRY_PASSWORD` as basic
//! auth) and the request is retried once with it. A `Basic` challenge is
//! answered with those credentials directly.

use crate::cause::{holds_cause, Cause};
use crate::fetch::HttpOptions;
use crate::home::RegistryConfig;
use crate::lookup::{lookup, LookupError, Resolution};
use crate::session::{OpenOptions, Repository, Session};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;
use tagtrust_shared::{Gun, ImageReference};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = tagtrust_shared::metadata::DEFAULT_MEDIA_TYPE;
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest media types asked for, in order of preference.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// The largest manifest read when no signed size bounds it (the reference
/// registry's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Largest token-endpoint answer read.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1024 * 1024;

/// Environment variables the CLI reads registry credentials from (basic
/// auth towards the token realm, or towards the registry on a `Basic`
/// challenge); named in messages asking for them.
pub const USER_ENV: &str = "TAGTRUST_REGISTRY_USER";
pub const PASSWORD_ENV: &str = "TAGTRUST_REGISTRY_PASSWORD";

/// Why a registry request failed or its answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No usable registry URL for the GUN.
    #[error("{0}")]
    Location(String),

    /// A request got no answer, or its answer could not be read.
    #[error("{request}: {message}")]
    Transport { request: String, message: String },

    /// Authentication failed, or was refused for the credentials' safety.
    #[error("{0}")]
    Auth(String),

    #[error("registry has no {what} (HTTP 404)")]
    NotFound { what: String },

    #[error("registry answered HTTP {status} for {what}")]
    Status { what: String, status: u16 },

    /// Bytes that are not the signed manifest (wrong digest or size).
    #[error("{0}")]
    Refused(String),

    /// An answer that cannot be used (too large, not JSON, fields missing).
    #[error("{0}")]
    InvalidAnswer(String),

    #[error(transparent)]
    Lookup(#[from] LookupError),

    /// `pull` failed fetching the verified manifest.
    #[error("pulling {reference} from {base}: {source}")]
    Pull {
        reference: String,
        base: String,
        source: Box<RegistryError>,
    },

    /// The HTTP client could not be made ([`Cause::Fetch`]), or
    /// config.toml cannot be used.
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(RegistryError);

fn transport(request: String, e: &(dyn std::error::Error + 'static)) -> RegistryError {
    RegistryError::Transport {
        request,
        message: crate::error_line::error_line(e),
    }
}

/// Where a GUN's manifests live: registry base URL and repository name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryLocation {
    /// e.g. `http://127.0.0.1:5000`, no trailing `/`.
    pub base: String,
    /// Repository name inside the registry, e.g. `acme/app`.
    pub name: String,
}

/// Whether the first segment of a GUN names a registry host (it contains a
/// `.` or `:`, or is `localhost`), as Docker decides it.
fn host_segment(gun: &str) -> Option<(&str, &str)> {
    let (first, rest) = gun.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some((first, rest))
}

fn is_loopback_host(host: &str) -> bool {
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Where to fetch `gun`'s manifests. The repository name is the GUN without
/// its registry host; the base is `registry` when given, else that host
/// (`https`, or plain `http` for a loopback host).
pub fn locate(gun: &Gun, registry: Option<&str>) -> Result<RegistryLocation, RegistryError> {
    let gun = gun.as_str();
    let (host, name) = match host_segment(gun) {
        Some((host, name)) => (Some(host), name.to_string()),
        None => (None, gun.to_string()),
    };
    let base = match (registry.filter(|r| !r.is_empty()), host) {
        (Some(url), _) => {
            let url = url.trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(RegistryError::Location(format!(
                    "registry URL {url:?} must start with http:// or https://"
                )));
            }
            url.to_string()
        }
        (None, Some(host)) if is_loopback_host(host) => format!("http://{host}"),
        (None, Some(host)) => format!("https://{host}"),
        (None, None) => {
            return Err(RegistryError::Location(format!(
                "GUN {gun} names no registry host; give --registry URL or set TAGTRUST_REGISTRY"
            )))
        }
    };
    Ok(RegistryLocation { base, name })
}

/// What a tag or digest points to in a registry: an OCI descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// The manifest's top-level `annotations`.
    pub annotations: BTreeMap<String, String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A client for one registry.
pub struct RegistryClient {
    http: Client,
    base: String,
    credentials: Option<(String, String)>,
    /// Realm hosts besides the registry's own origin allowed to receive
    /// the credentials (config `registry.token_realms`).
    token_realms: Vec<String>,
    /// The `Authorization` value that last worked, reused for later requests.
    authorization: Mutex<Option<String>>,
}

/// Scheme, host and port (default ports written out) of an http(s) URL.
fn origin_of(url: &str) -> Option<(String, String, u16)> {
    let url = reqwest::Url::parse(url).ok()?;
    Some((
        url.scheme().to_string(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
    ))
}

/// May the registry credentials be sent to the token `realm` named by a
/// challenge of the registry at `registry`? Only to the registry's own
/// origin (same scheme, host and port), or over https to a host the user
/// allowed in `allowed` (`host` for port 443, or `host:port`). The
/// registry chooses the realm, so a hostile or compromised registry must
/// not be able to send the password anywhere else.
pub fn may_send_credentials(realm: &str, registry: &str, allowed: &[String]) -> bool {
    let Some(realm) = origin_of(realm) else {
        return false;
    };
    if origin_of(registry).as_ref() == Some(&realm) {
        return true;
    }
    // An allowed entry is `host` or `host:port`, read as an https origin.
    realm.0 == "https"
        && allowed
            .iter()
            .any(|entry| origin_of(&format!("https://{}/", entry.trim())) == Some(realm.clone()))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic`, lower case.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parse `Bearer realm="…",service="…",scope="…"` (quoted values may hold
/// commas and escaped quotes).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, mut rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r.trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// Read at most `max` bytes of `resp`; more is an error (the caller's
/// message says against what).
fn read_capped(resp: Response, max: u64) -> Result<Result<Vec<u8>, u64>, RegistryError> {
    let mut body = Vec::new();
    resp.take(max.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| transport("reading the registry's answer".into(), &e))?;
    if body.len() as u64 > max {
        return Ok(Err(max));
    }
    Ok(Ok(body))
}

fn header_str(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The media type of a `Content-Type` value, without parameters.
fn bare_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl RegistryClient {
    /// A client for the registry at `base` (e.g. `http://127.0.0.1:5000`),
    /// with the limits of `http` (which must carry no credentials).
    pub fn new(
        base: &str,
        credentials: Option<(String, String)>,
        http: &HttpOptions,
    ) -> Result<Self, RegistryError> {
        let http: Client = http.client()?;
        Ok(RegistryClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            credentials,
            token_realms: Vec::new(),
            authorization: Mutex::new(None),
        })
    }

    /// Also send the credentials to these token realm hosts (config
    /// `registry.token_realms`; see [`may_send_credentials`]).
    pub fn with_token_realms(mut self, realms: &[String]) -> Self {
        self.token_realms = realms.to_vec();
        self
    }

    /// A client for `location`, with `credentials` and the realm hosts
    /// allowed in `config`.
    pub fn for_location(
        location: &RegistryLocation,
        config: &RegistryConfig,
        credentials: Option<(String, String)>,
        http: &HttpOptions,
    ) -> Result<Self, RegistryError> {
        Ok(Self::new(&location.base, credentials, http)?.with_token_realms(&config.token_realms))
    }

    fn manifest_url(&self, name: &str, reference: &str) -> String {
        format!("{}/v2/{name}/manifests/{reference}", self.base)
    }

    /// Send a manifest request; on a 401 challenge, authenticate and retry
    /// once.
    fn send_manifest_request(
        &self,
        method: Method,
        name: &str,
        reference: &str,
    ) -> Result<Response, RegistryError> {
        let url = self.manifest_url(name, reference);
        let build = |auth: Option<&str>| -> RequestBuilder {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
            if let Some(auth) = auth {
                req = req.header(AUTHORIZATION, auth);
            }
            req
        };
        let cached = self.authorization.lock().unwrap().clone();
        let resp = build(cached.as_deref())
            .send()
            .map_err(|e| transport(format!("{method} {url}"), &e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let header = header_str(resp.headers(), WWW_AUTHENTICATE).ok_or_else(|| {
            RegistryError::Auth(format!(
                "{method} {url}: registry answered 401 without a WWW-Authenticate challenge"
            ))
        })?;
        let challenge = parse_challenge(&header).ok_or_else(|| {
            RegistryError::Auth(format!(
                "{method} {url}: unreadable WWW-Authenticate {header:?}"
            ))
        })?;
        let auth = self.answer_challenge(&challenge, name)?;
        let resp = build(Some(&auth))
            .send()
            .map_err(|e| transport(format!("{method} {url}"), &e))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Auth(format!(
                "{method} {url}: registry refused the credentials (HTTP 401){}",
                if self.credentials.is_none() {
                    format!("; set {USER_ENV} and {PASSWORD_ENV}")
                } else {
                    String::new()
                }
            )));
        }
        *self.authorization.lock().unwrap() = Some(auth);
        Ok(resp)
    }

    /// The `Authorization` value answering `challenge`.
    fn answer_challenge(&self, challenge: &Challenge, name: &str) -> Result<String, RegistryError> {
        match challenge.scheme.as_str() {
            "bearer" => Ok(format!("Bearer {}", self.fetch_token(challenge, name)?)),
            "basic" => {
                let (user, password) = self.credentials.as_ref().ok_or_else(|| {
                    RegistryError::Auth(format!(
                        "registry requires basic auth; set {USER_ENV} and {PASSWORD_ENV}"
                    ))
                })?;
                use base64::Engine;
                let pair = format!("{user}:{password}");
                Ok(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            other => Err(RegistryError::Auth(format!(
                "registry asks for unsupported authentication scheme {other:?}"
            ))),
        }
    }

    /// The registry token flow: GET realm?service=…&scope=…, anonymously or
    /// with basic auth, and take `token` (or `access_token`) from the JSON.
    fn fetch_token(&self, challenge: &Challenge, name: &str) -> Result<String, RegistryError> {
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| RegistryError::Auth("Bearer challenge without a realm".into()))?;
        if !(realm.starts_with("http://") || realm.starts_with("https://")) {
            return Err(RegistryError::Auth(format!(
                "Bearer challenge realm {realm:?} is not an http(s) URL"
            )));
        }
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(service) = challenge.params.get("service") {
            query.push(("service", service.clone()));
        }
        match challenge.params.get("scope") {
            Some(scope) => {
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    query.push(("scope", s.to_string()));
                }
            }
            None => query.push(("scope", format!("repository:{name}:pull"))),
        }
        let mut req = self.http.get(realm).query(&query);
        if let Some((user, password)) = &self.credentials {
            // The registry names the realm: send the password only to the
            // registry's own origin or an https host the user allowed.
            if !may_send_credentials(realm, &self.base, &self.token_realms) {
                return Err(RegistryError::Auth(format!(
                    "registry token realm {realm} is not the registry's own origin ({}) nor a host allowed in config.toml [registry] token_realms; \
                     not sending {USER_ENV}/{PASSWORD_ENV} there",
                    self.base
                )));
            }
            req = req.basic_auth(user, Some(password));
        }
        let resp = req
            .send()
            .map_err(|e| transport(format!("fetching a registry token from {realm}"), &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(RegistryError::Auth(format!(
                "registry token endpoint {realm} answered HTTP {}{}",
                status.as_u16(),
                if status == StatusCode::UNAUTHORIZED && self.credentials.is_none() {
                    format!("; set {USER_ENV} and {PASSWORD_ENV}")
                } else {
                    String::new()
                }
            )));
        }
        let body = read_capped(resp, MAX_TOKEN_RESPONSE_BYTES)?.map_err(|max| {
            RegistryError::InvalidAnswer(format!(
                "token answer from {realm} is larger than {max} bytes"
            ))
        })?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::InvalidAnswer(format!("token answer from {realm} is not JSON: {e}"))
        })?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                RegistryError::InvalidAnswer(format!("token answer from {realm} holds no token"))
            })
    }

    fn check_status(resp: &Response, what: &str) -> Result<(), RegistryError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                what: what.to_string(),
            });
        }
        Err(RegistryError::Status {
            what: what.to_string(),
            status: status.as_u16(),
        })
    }

    /// Fetch the manifest `digest` of repository `name` and return its bytes
    /// only if their sha256 is `digest` and their length is `size` (the
    /// signed target). Reading stops past `size` bytes.
    pub fn fetch_manifest_verified(
        &self,
        name: &str,
        digest: &str,
        size: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let what = format!("manifest {name}@{digest}");
        let resp = self.send_manifest_request(Method::GET, name, digest)?;
        Self::check_status(&resp, &what)?;
        if let Some(length) =
            header_str(resp.headers(), CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok())
        {
            if length > size {
                return Err(RegistryError::Refused(format!(
                    "registry announced a {length}-byte manifest for {name}@{digest}, more than the signed {size} bytes; refused"
                )));
            }
        }
        let body = read_capped(resp, size)?.map_err(|_| {
            RegistryError::Refused(format!(
                "registry served more than the signed {size} bytes for {name}@{digest}; refused"
            ))
        })?;
        let actual = sha256_digest(&body);
        if actual != digest {
            return Err(RegistryError::Refused(format!(
                "registry served a manifest whose sha256 {actual} does not match the signed digest {digest}; refused"
            )));
        }
        if body.len() as u64 != size {
            return Err(RegistryError::Refused(format!(
                "registry served a {}-byte manifest for {name}@{digest}, the signed size is {size}; refused",
                body.len()
            )));
        }
        Ok(body)
    }

    /// What `reference` (a tag or digest) of repository `name` points to in
    /// the registry now: `HEAD` gives digest, size and media type (a `GET`
    /// stands in when `HEAD` lacks the digest); the manifest is then fetched
    /// by that digest, checked against it, and its `annotations` read.
    pub fn describe(&self, name: &str, reference: &str) -> Result<Descriptor, RegistryError> {
        let what = format!("manifest {name}:{reference}");
        let head = self.send_manifest_request(Method::HEAD, name, reference)?;
        Self::check_status(&head, &what)?;
        let headers = head.headers();
        let digest = header_str(headers, "docker-content-digest");
        let size = header_str(headers, CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
        let content_type = header_str(headers, CONTENT_TYPE).map(|ct| bare_media_type(&ct));
        let (digest, size, body, content_type) = match (digest, size) {
            (Some(digest), Some(size)) if digest.starts_with("sha256:") => {
                if size > MAX_MANIFEST_BYTES {
                    return Err(RegistryError::InvalidAnswer(format!("{what} is {size} bytes, larger than the {MAX_MANIFEST_BYTES}-byte manifest limit")));
                }
                let body = self.fetch_manifest_verified(name, &digest, size)?;
                (digest, size, body, content_type)
            }
            (Some(digest), _) if !digest.starts_with("sha256:") => {
                return Err(RegistryError::InvalidAnswer(format!(
                    "registry names {what} by {digest}; tagtrust signs sha256 digests only"
                )))
            }
            _ => {
                // No digest (or size) on HEAD: GET by reference and hash.
                let resp = self.send_manifest_request(Method::GET, name, reference)?;
                Self::check_status(&resp, &what)?;
                let content_type =
                    header_str(resp.headers(), CONTENT_TYPE).map(|ct| bare_media_type(&ct));
                let body = read_capped(resp, MAX_MANIFEST_BYTES)?.map_err(|max| {
                    RegistryError::InvalidAnswer(format!(
                        "{what} is larger than the {max}-byte manifest limit"
                    ))
                })?;
                (sha256_digest(&body), body.len() as u64, body, content_type)
            }
        };
        let manifest: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::InvalidAnswer(format!("{what} ({digest}) is not JSON: {e}"))
        })?;
        let body_media_type = manifest
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        let media_type = match content_type {
            Some(ct) if MANIFEST_MEDIA_TYPES.contains(&ct.as_str()) => ct,
            other => body_media_type.or(other).ok_or_else(|| {
                RegistryError::InvalidAnswer(format!(
                    "{what} ({digest}) has neither a Content-Type nor a mediaType"
                ))
            })?,
        };
        let mut annotations = BTreeMap::new();
        if let Some(map) = manifest.get("annotations").and_then(|a| a.as_object()) {
            for (key, value) in map {
                let value = value.as_str().ok_or_else(|| {
                    RegistryError::InvalidAnswer(format!(
                        "{what} ({digest}): annotation {key:?} is not a string"
                    ))
                })?;
                annotations.insert(key.clone(), value.to_string());
            }
        }
        Ok(Descriptor {
            digest,
            size,
            media_type,
            annotations,
        })
    }
}

/// A manifest fetched for a verified tag.
pub struct Pulled {
    /// The TUF answer the manifest was checked against.
    pub resolution: Resolution,
    /// The annotations of the signed target (`custom.annotations`).
    pub annotations: BTreeMap<String, String>,
    /// Where the manifest came from.
    pub location: RegistryLocation,
    /// The manifest bytes; their sha256 and length are the signed ones.
    pub manifest: Vec<u8>,
}

/// `pull`: resolve `reference` with the full TUF workflow, then fetch the
/// manifest by the signed digest from the registry (`registry`, else the
/// GUN's host) and return it only if it matches the signed digest and size.
pub fn pull(
    session: &Session,
    reference: &ImageReference,
    options: &OpenOptions,
    registry: Option<&str>,
    credentials: Option<(String, String)>,
) -> Result<(Pulled, Repository), RegistryError> {
    let location = locate(&reference.gun, registry)?;
    let (resolution, repo) = lookup(session, reference, options)?;
    let annotations = resolution
        .custom
        .as_ref()
        .and_then(|custom| custom.get("annotations").cloned())
        .and_then(|a| serde_json::from_value(a).ok())
        .unwrap_or_default();
    let client = RegistryClient::for_location(
        &location,
        &session.home.config()?.registry,
        credentials,
        &session.http,
    )?;
    let manifest = client
        .fetch_manifest_verified(&location.name, &resolution.digest, resolution.size)
        .map_err(|source| RegistryError::Pull {
            reference: reference.to_string(),
            base: location.base.clone(),
            source: Box::new(source),
        })?;
    Ok((
        Pulled {
            resolution,
            annotations,
            location,
            manifest,
        },
        repo,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_strips_the_registry_host() {
        let gun = Gun::parse("127.0.0.1:5000/acme/app").unwrap();
        let loc = locate(&gun, None).unwrap();
        assert_eq!(loc.base, "http://127.0.0.1:5000");
        assert_eq!(loc.name, "acme/app");
        let gun = Gun::parse("registry.example.com/acme/app").unwrap();
        let loc = locate(&gun, None).unwrap();
        assert_eq!(loc.base, "https://registry.example.com");
        assert_eq!(loc.name, "acme/app");
        let gun = Gun::parse("localhost/app").unwrap();
        assert_eq!(locate(&gun, None).unwrap().base, "http://localhost");
        let loc = locate(&gun, Some("http://127.0.0.1:9/")).unwrap();
        assert_eq!(loc.base, "http://127.0.0.1:9");
        assert_eq!(loc.name, "app");
    }

    #[test]
    fn locate_without_host_needs_a_registry() {
        let gun = Gun::parse("acme/app").unwrap();
        let err = locate(&gun, None).unwrap_err().to_string();
        assert!(err.contains("--registry"), "{err}");
        let loc = locate(&gun, Some("http://127.0.0.1:5000")).unwrap();
        assert_eq!(loc.name, "acme/app");
        assert!(locate(&gun, Some("ftp://x")).is_err());
    }

    #[test]
    fn parses_bearer_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:acme/app:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["service"], "registry.example");
        assert_eq!(c.params["scope"], "repository:acme/app:pull,push");
        let c = parse_challenge(r#"Basic realm="Registry \"x\"""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry \"x\"");
        let c = parse_challenge("Bearer realm=http://a/t, service=s").unwrap();
        assert_eq!(c.params["realm"], "http://a/t");
        assert_eq!(c.params["service"], "s");
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    /// The password goes to the registry's own origin, or over https to an
    /// allowed realm host; never to another scheme, port or host.
    #[test]
    fn credentials_go_only_to_the_registry_origin_or_allowed_realms() {
        let none: &[String] = &[];
        let registry = "https://registry.example.com";
        for same in [
            "https://registry.example.com/token",
            "https://REGISTRY.example.com:443/token?x=1",
        ] {
            assert!(may_send_credentials(same, registry, none), "{same}");
        }
        for other in [
            "https://auth.example.com/token",
            "http://registry.example.com/token",
            "https://registry.example.com:8443/token",
            "https://evil.example/token",
            "not a url",
        ] {
            assert!(!may_send_credentials(other, registry, none), "{other}");
        }
        // Plain http registry: the same origin only (port included).
        assert!(may_send_credentials(
            "http://127.0.0.1:5000/t",
            "http://127.0.0.1:5000",
            none
        ));
        assert!(!may_send_credentials(
            "http://127.0.0.1:5001/t",
            "http://127.0.0.1:5000",
            none
        ));
        assert!(!may_send_credentials(
            "https://127.0.0.1:5000/t",
            "http://127.0.0.1:5000",
            none
        ));
        // Allowed realm hosts: https only, port 443 unless given.
        let allowed = vec![
            "auth.example.com".to_string(),
            "sso.example.com:8443".to_string(),
        ];
        assert!(may_send_credentials(
            "https://auth.example.com/token",
            registry,
            &allowed
        ));
        assert!(!may_send_credentials(
            "http://auth.example.com/token",
            registry,
            &allowed
        ));
        assert!(!may_send_credentials(
            "https://auth.example.com:444/token",
            registry,
            &allowed
        ));
        assert!(may_send_credentials(
            "https://sso.example.com:8443/t",
            registry,
            &allowed
        ));
        assert!(!may_send_credentials(
            "https://sso.example.com/t",
            registry,
            &allowed
        ));
        assert!(!may_send_credentials(
            "https://x.auth.example.com/t",
            registry,
            &allowed
        ));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("registry.example.com"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
    }
}
