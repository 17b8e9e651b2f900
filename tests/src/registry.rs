//! A real OCI distribution registry for the `pull` tests: Debian's
//! `docker-registry` package (the CNCF distribution reference registry),
//! started on a free loopback port with filesystem storage in a temporary
//! directory, plus helpers that push blobs and manifests over the
//! distribution API, and [`AuthGate`], a loopback front that makes the
//! registry demand the Bearer token flow.

use crate::base64;
use crate::proxy::read_request;
use crate::{free_port, wait_until_answering_with, KillOnDrop};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where Debian installs the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A running `docker-registry serve`, killed when dropped.
pub struct TestRegistry {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT`, the host segment of a GUN served by this registry.
    pub host: String,
    _dir: tempfile::TempDir,
    _process: KillOnDrop,
    http: reqwest::blocking::Client,
}

impl TestRegistry {
    /// Start the registry, or `None` with a notice when the package is not
    /// installed (under `CI=true` that is a failure: `.ci/run` installs it).
    pub fn start() -> Option<TestRegistry> {
        Self::launch("", None)
    }

    /// Start the registry with docker distribution's `token` authentication
    /// (`realm`, `service`, `issuer`, root certificate `bundle`); its
    /// requests carry `bearer`, a token of that service granting what the
    /// test pushes.
    pub fn start_with_token_auth(
        realm: &str,
        service: &str,
        issuer: &str,
        bundle: &Path,
        bearer: &str,
    ) -> Option<TestRegistry> {
        let auth = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
            bundle.display()
        );
        Self::launch(&auth, Some(bearer))
    }

    fn launch(auth: &str, bearer: Option<&str>) -> Option<TestRegistry> {
        if !Path::new(REGISTRY_BIN).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{REGISTRY_BIN} must be installed under CI=true (apt-get install docker-registry; .ci/run does)"
            );
            eprintln!("notice: {REGISTRY_BIN} missing (apt-get install docker-registry); skipping registry tests");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        // Its log (errors only, e.g. every 404) goes to a file, shown if it
        // fails to start.
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let url = format!("http://127.0.0.1:{port}");
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(bearer) = bearer {
            let value = format!("Bearer {bearer}").parse().unwrap();
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .unwrap();
        wait_until_answering_with(
            &http,
            &mut child,
            &format!("{url}/v2/"),
            "docker-registry",
            || std::fs::read_to_string(&log_path).unwrap_or_default(),
        );
        Some(TestRegistry {
            url,
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
            _process: KillOnDrop(child),
            http,
        })
    }

    /// Monolithic blob upload: `POST /v2/<name>/blobs/uploads/`, then `PUT`
    /// the bytes to the upload location with `?digest=`. Returns the digest.
    pub fn push_blob(&self, name: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let resp = self
            .http
            .post(format!("{}/v2/{name}/blobs/uploads/", self.url))
            .send()
            .expect("start blob upload");
        assert_eq!(resp.status().as_u16(), 202, "blob upload start: {resp:?}");
        let location = resp
            .headers()
            .get("location")
            .expect("upload Location")
            .to_str()
            .unwrap()
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.url)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = self
            .http
            .put(format!("{location}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .expect("finish blob upload");
        assert_eq!(resp.status().as_u16(), 201, "blob upload: {resp:?}");
        digest
    }

    /// `PUT /v2/<name>/manifests/<reference>`; returns the manifest digest.
    pub fn push_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let resp = self
            .http
            .put(format!("{}/v2/{name}/manifests/{reference}", self.url))
            .header("Content-Type", media_type)
            .body(bytes.to_vec())
            .send()
            .expect("push manifest");
        let status = resp.status().as_u16();
        assert_eq!(
            status,
            201,
            "manifest push: {}",
            resp.text().unwrap_or_default()
        );
        sha256_digest(bytes)
    }

    /// Push a small OCI image (config, one layer, manifest with `annotations`)
    /// and tag it `tag`. Returns the manifest bytes and digest; `seed` makes
    /// the image distinct.
    pub fn push_image(
        &self,
        name: &str,
        tag: &str,
        seed: &str,
        annotations: &[(&str, &str)],
    ) -> (Vec<u8>, String) {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": { "seed": seed } },
            "rootfs": { "type": "layers", "diff_ids": [] },
        }))
        .unwrap();
        let layer = format!("layer of {seed}").into_bytes();
        let config_digest = self.push_blob(name, &config);
        let layer_digest = self.push_blob(name, &layer);
        let annotations: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len() },
            "layers": [ { "mediaType": OCI_LAYER, "digest": layer_digest, "size": layer.len() } ],
        });
        if !annotations.is_empty() {
            manifest["annotations"] = annotations.into();
        }
        let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
        let digest = self.push_manifest(name, tag, OCI_MANIFEST, &bytes);
        (bytes, digest)
    }
}

/// A loopback front for a registry that demands the Bearer token flow, as
/// registries with a token server do: `/v2/…` without the right
/// `Authorization: Bearer` is answered 401 with a `WWW-Authenticate: Bearer
/// realm=…,service=…,scope=…` challenge; `GET /token` hands out the token
/// (to anyone, or only to a basic-auth user when one is set); everything
/// else is forwarded to the registry.
pub struct AuthGate {
    pub url: String,
    /// How many tokens the realm handed out.
    pub tokens_issued: Arc<AtomicUsize>,
    /// How many registry requests came without the valid token.
    pub challenged: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The service name the gate's challenge names.
pub const GATE_SERVICE: &str = "tagtrust-test-registry";

#[derive(Clone)]
struct GateConfig {
    upstream: String,
    url: String,
    token: String,
    /// `Basic <base64>` the realm requires, if any.
    basic: Option<String>,
    scope: String,
}

impl AuthGate {
    /// Gate `upstream`; the token is issued for `scope` (e.g.
    /// `repository:acme/app:pull`) and, when `credentials` is given, only to
    /// that user.
    pub fn start(upstream: &str, scope: &str, credentials: Option<(&str, &str)>) -> AuthGate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind auth gate");
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let config = GateConfig {
            upstream: upstream.trim_end_matches('/').to_string(),
            url: url.clone(),
            token: format!("tok-{:016x}", rand::random::<u64>()),
            basic: credentials
                .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))),
            scope: scope.to_string(),
        };
        let tokens_issued = Arc::new(AtomicUsize::new(0));
        let challenged = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (tokens_issued, challenged, stop) =
                (tokens_issued.clone(), challenged.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (client, config) = (client.clone(), config.clone());
                            let (tokens_issued, challenged) =
                                (tokens_issued.clone(), challenged.clone());
                            std::thread::spawn(move || {
                                let _ = gate(stream, &client, &config, &tokens_issued, &challenged);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        AuthGate {
            url,
            tokens_issued,
            challenged,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for AuthGate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    content_length: usize,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn gate(
    mut stream: TcpStream,
    client: &reqwest::blocking::Client,
    config: &GateConfig,
    tokens_issued: &AtomicUsize,
    challenged: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some(req) = read_request(&mut stream)? else {
        return Ok(());
    };
    let json = vec![("Content-Type".to_string(), "application/json".to_string())];
    if req.path.starts_with("/token") {
        let expected_scope = format!(
            "scope={}",
            config.scope.replace('/', "%2F").replace(':', "%3A")
        );
        let scope_ok = req.path.contains(&expected_scope)
            && req.path.contains(&format!("service={GATE_SERVICE}"));
        let auth_ok = match &config.basic {
            Some(basic) => req.header("authorization") == Some(basic.as_str()),
            None => true,
        };
        if !scope_ok {
            let body = format!(
                "{{\"errors\":[{{\"message\":\"bad token request {}\"}}]}}",
                req.path
            );
            return respond(&mut stream, 400, &json, body.as_bytes(), body.len());
        }
        if !auth_ok {
            let body = b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}";
            return respond(&mut stream, 401, &json, body, body.len());
        }
        tokens_issued.fetch_add(1, Ordering::SeqCst);
        let body = format!("{{\"token\":\"{}\",\"expires_in\":300}}", config.token);
        return respond(&mut stream, 200, &json, body.as_bytes(), body.len());
    }
    if req.header("authorization") != Some(format!("Bearer {}", config.token).as_str()) {
        challenged.fetch_add(1, Ordering::SeqCst);
        let challenge = format!(
            "Bearer realm=\"{}/token\",service=\"{GATE_SERVICE}\",scope=\"{}\"",
            config.url, config.scope
        );
        let mut headers = json.clone();
        headers.push(("WWW-Authenticate".to_string(), challenge));
        let body =
            b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}";
        let len = if req.method == "HEAD" { 0 } else { body.len() };
        return respond(&mut stream, 401, &headers, &body[..len], len);
    }
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let is_head = method == reqwest::Method::HEAD;
    let mut upstream = client.request(method, format!("{}{}", config.upstream, req.path));
    for name in ["accept", "content-type"] {
        if let Some(value) = req.header(name) {
            upstream = upstream.header(name, value);
        }
    }
    let resp = match upstream.body(req.body).send() {
        Ok(resp) => resp,
        Err(_) => return respond(&mut stream, 502, &[], b"", 0),
    };
    let status = resp.status().as_u16();
    let mut headers = Vec::new();
    for name in ["content-type", "docker-content-digest", "location"] {
        if let Some(value) = resp.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    let length: usize = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    if is_head {
        respond(&mut stream, status, &headers, b"", length)
    } else {
        respond(&mut stream, status, &headers, &body, body.len())
    }
}
