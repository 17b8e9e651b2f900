//! The tagtrust server's HTTP API as the publisher uses it: online public
//! keys and atomic multi-file publishes. Reads of metadata go through the
//! [`crate::updater`], never through here, so they are always verified.

use crate::fetch::{FetchError, HttpOptions};
use tagtrust_shared::{Gun, PublicKey, TopLevelRole};

/// Why a request to the server's write API did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Someone else published first; re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),

    /// The server refused the upload (invalid metadata, not allowed, …).
    #[error("server refused the upload ({status}): {message}")]
    Rejected { status: u16, message: String },

    /// The server refused to hand out or make an online key.
    #[error("server refused the {role} key for {gun} ({status}): {message}")]
    KeyRefused {
        role: String,
        gun: String,
        status: reqwest::StatusCode,
        message: String,
    },

    /// The request did not get an answer, or the answer was unreadable.
    #[error("{request}: {message}")]
    Transport { request: String, message: String },

    /// The HTTP client could not be made.
    #[error(transparent)]
    Http(#[from] FetchError),
}

/// The write side of one tagtrust server.
pub struct ServerClient {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl ServerClient {
    /// A client with the default HTTP limits.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, RemoteError> {
        Self::with_http(base, token, &HttpOptions::default())
    }

    /// A client with the limits of `http`.
    pub fn with_http(
        base: &str,
        token: Option<String>,
        http: &HttpOptions,
    ) -> Result<Self, RemoteError> {
        let http = http.client()?;
        Ok(ServerClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{server}/v2/{gun}/_trust/tuf/`: the metadata base URL of a GUN.
    pub fn metadata_url(&self, gun: &Gun) -> String {
        metadata_url(&self.base, gun)
    }

    fn authorized(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// The server-held public key of `role` (timestamp or snapshot) for
    /// `gun`, created on the server if it has none yet.
    pub fn online_key(&self, gun: &Gun, role: TopLevelRole) -> Result<PublicKey, RemoteError> {
        self.key_request(reqwest::Method::GET, gun, role.as_str())
    }

    /// The server-held bin key of `gun` (`bins.key`), created on the
    /// server if it has none yet: for bins the server signs.
    pub fn bins_key(&self, gun: &Gun) -> Result<PublicKey, RemoteError> {
        self.key_request(reqwest::Method::GET, gun, tagtrust_shared::bins::BIN_PREFIX)
    }

    /// Have the server change tags in the bins it signs for `gun`
    /// (`POST /v2/{gun}/_trust/tags`, on this client's `push:` token).
    /// Returns the server's answer (the new versions).
    pub fn change_tags(
        &self,
        gun: &Gun,
        changes: &tagtrust_shared::bins::TagChanges,
    ) -> Result<serde_json::Value, RemoteError> {
        let url = format!("{}/v2/{gun}/_trust/tags", self.base());
        let resp = self
            .authorized(self.http.post(&url))
            .json(changes)
            .send()
            .map_err(|e| transport(format!("POST {url}"), &e))?;
        let body = success_body(resp, &url)?;
        serde_json::from_slice(&body).map_err(|e| RemoteError::Rejected {
            status: 200,
            message: format!("the answer to POST {url} is not JSON: {e}"),
        })
    }

    /// Have the server generate a new key for `role`; it signs with it once
    /// a root listing it is published.
    pub fn rotate_online_key(
        &self,
        gun: &Gun,
        role: TopLevelRole,
    ) -> Result<PublicKey, RemoteError> {
        self.key_request(reqwest::Method::POST, gun, role.as_str())
    }

    fn key_request(
        &self,
        method: reqwest::Method,
        gun: &Gun,
        role: &str,
    ) -> Result<PublicKey, RemoteError> {
        let url = format!("{}{role}.key", self.metadata_url(gun));
        let resp = self
            .authorized(self.http.request(method.clone(), &url))
            .send()
            .map_err(|e| transport(format!("{method} {url}"), &e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = crate::fetch::read_error_body(resp);
            return Err(RemoteError::KeyRefused {
                role: role.to_string(),
                gun: gun.to_string(),
                status,
                message: describe_error(&body),
            });
        }
        let body = resp
            .bytes()
            .map_err(|e| transport(format!("{role} key from {url}"), &e))?;
        parse_online_key(&body).map_err(|message| RemoteError::Transport {
            request: format!("{role} key from {url}"),
            message,
        })
    }

    /// Upload role files (`(role name, bytes)`) in one atomic publish.
    pub fn publish(&self, gun: &Gun, files: &[(String, Vec<u8>)]) -> Result<(), RemoteError> {
        self.post_files(&self.metadata_url(gun), files).map(|_| ())
    }

    /// Hand a mirrored copy (`({version}.{role}.json, bytes)`, exactly as
    /// the upstream serves them) to this server, which verifies and stores
    /// it in one transaction (needs an `admin:` token for the GUN). Returns
    /// the server's answer.
    pub fn import_mirror(
        &self,
        gun: &Gun,
        files: &[(String, Vec<u8>)],
    ) -> Result<serde_json::Value, RemoteError> {
        let url = format!("{}/v2/{gun}/_trust/mirror", self.base());
        let body = self.post_files(&url, files)?;
        serde_json::from_slice(&body).map_err(|e| RemoteError::Rejected {
            status: 200,
            message: format!("the answer to POST {url} is not JSON: {e}"),
        })
    }

    /// POST `files` as multipart parts named `files` with these file
    /// names; the body of a success.
    fn post_files(&self, url: &str, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, RemoteError> {
        let mut form = reqwest::blocking::multipart::Form::new();
        for (name, bytes) in files {
            let part = reqwest::blocking::multipart::Part::bytes(bytes.clone())
                .file_name(name.clone())
                .mime_str("application/json")
                .map_err(|e| transport(format!("POST {url}"), &e))?;
            form = form.part("files", part);
        }
        let resp = self
            .authorized(self.http.post(url))
            .multipart(form)
            .send()
            .map_err(|e| transport(format!("POST {url}"), &e))?;
        success_body(resp, url)
    }
}

/// A server's online public key, in either form it answers with:
/// tagtrust's TUF key JSON (a spec-TUF repository), or Notary's
/// `{"keytype", "keyval": {"public": base64}}` (a repository not yet
/// published, whose dialect the server cannot know yet, and Notary ones).
fn parse_online_key(body: &[u8]) -> Result<PublicKey, String> {
    if let Ok(key) = serde_json::from_slice::<PublicKey>(body) {
        return Ok(key);
    }
    let key: tagtrust_shared::notary::NotaryKey =
        serde_json::from_slice(body).map_err(|e| format!("not a public key: {e}"))?;
    key.to_public_key(key.method()).map_err(|e| e.to_string())
}

/// The body of a successful answer to `POST url`; a 409 is a
/// [`RemoteError::Conflict`], any other failure [`RemoteError::Rejected`],
/// with the server's message.
fn success_body(resp: reqwest::blocking::Response, url: &str) -> Result<Vec<u8>, RemoteError> {
    let status = resp.status();
    if status.is_success() {
        return resp
            .bytes()
            .map(|b| b.to_vec())
            .map_err(|e| transport(format!("POST {url}"), &e));
    }
    let body = crate::fetch::read_error_body(resp);
    let message = describe_error(&body);
    if status == reqwest::StatusCode::CONFLICT {
        return Err(RemoteError::Conflict(message));
    }
    Err(RemoteError::Rejected {
        status: status.as_u16(),
        message,
    })
}

/// `{server}/v2/{gun}/_trust/tuf/`
pub fn metadata_url(server: &str, gun: &Gun) -> String {
    format!("{}/v2/{gun}/_trust/tuf/", server.trim_end_matches('/'))
}

fn transport(request: String, e: &reqwest::Error) -> RemoteError {
    RemoteError::Transport {
        request,
        message: crate::error_line::error_line(e),
    }
}

/// One line from an error body: the server's messages if it sent its JSON
/// error form, else the start of the body.
fn describe_error(body: &[u8]) -> String {
    crate::fetch::server_error_message(body).unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .chars()
            .take(200)
            .collect::<String>()
            .replace('\n', " ")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_online_key_is_read_in_either_form() {
        let key = tagtrust_shared::SigningKey::generate().public_key();
        let notary = tagtrust_shared::notary::NotaryKey::from_public_key(&key).unwrap();
        for body in [
            serde_json::to_vec(&key).unwrap(),
            serde_json::to_vec(&notary).unwrap(),
        ] {
            let read = super::parse_online_key(&body).unwrap();
            assert_eq!(read, key);
            assert_eq!(read.key_id(), key.key_id());
        }
        assert!(super::parse_online_key(b"{}").is_err());
    }
}
