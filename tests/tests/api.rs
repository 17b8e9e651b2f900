//! Black-box tests of the tagtrust-server HTTP API, against the real binary,
//! on SQLite and (with `TAGTRUST_TEST_POSTGRES_URL`) PostgreSQL. Metadata is
//! built and signed here with `tagtrust_shared`, as any publisher would.

use chrono::{Duration, Utc};
use reqwest::blocking::multipart::{Form, Part};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_shared::{
    Metadata, PublicKey, Root, SigningKey, Snapshot, TargetFile, Targets, Timestamp,
};
use tagtrust_tests::{
    assert_contains, base64, delegations, files_form, http, metrics, sign, succeeded,
    terminating_role, Backend, TestServer,
};

const GUN: &str = "registry.example.com/acme/app";

/// The parts of one publish: `(filename, bytes)`.
type Files<'a> = Vec<(&'a str, Vec<u8>)>;

/// A running server plus a `push:*` token.
struct Api {
    server: TestServer,
    http: Client,
    push: String,
}

impl Api {
    fn new(backend: Backend) -> Api {
        Self::with_args(backend, &[])
    }

    fn with_args(backend: Backend, args: &[&str]) -> Api {
        let server = TestServer::spawn_with(backend, args);
        let push = server.create_token(&["push:*"]);
        Api {
            server,
            http: http(),
            push,
        }
    }

    /// A server started with `args` and a publisher of [`GUN`] that
    /// published root and targets version 1.
    fn published(backend: Backend, args: &[&str]) -> (Api, Publisher) {
        let api = Api::with_args(backend, args);
        let publisher = Publisher::new(&api, GUN);
        publisher.init(&api);
        (api, publisher)
    }

    fn url(&self, gun: &str, file: &str) -> String {
        format!("{}{file}", self.server.tuf_url(gun))
    }

    fn get(&self, gun: &str, file: &str) -> reqwest::blocking::Response {
        self.http.get(self.url(gun, file)).send().unwrap()
    }

    /// The bytes of a file that must exist.
    fn bytes(&self, gun: &str, file: &str) -> Vec<u8> {
        let resp = self.get(gun, file);
        assert_eq!(resp.status(), StatusCode::OK, "GET {file}");
        resp.bytes().unwrap().to_vec()
    }

    /// `GET` (the newest) or `POST` (a rotation) `{role}.key` with the push
    /// token.
    fn key_request(&self, method: Method, gun: &str, role: &str) -> reqwest::blocking::Response {
        let url = self.url(gun, &format!("{role}.key"));
        let request = self.http.request(method, url).bearer_auth(&self.push);
        request.send().unwrap()
    }

    fn online_key(&self, gun: &str, role: &str) -> PublicKey {
        let resp = self.key_request(Method::GET, gun, role);
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().unwrap()
    }

    /// POST a publish with these `(filename, bytes)` parts.
    fn publish_as(
        &self,
        gun: &str,
        token: Option<&str>,
        files: &[(&str, Vec<u8>)],
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(self.server.tuf_url(gun))
            .multipart(files_form(files));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().unwrap();
        let status = resp.status();
        let body = resp.json::<Value>().unwrap_or(Value::Null);
        (status, body)
    }

    fn publish(&self, gun: &str, files: &[(&str, Vec<u8>)]) -> (StatusCode, Value) {
        self.publish_as(gun, Some(&self.push), files)
    }

    /// Every current file of the repository (top-level roles plus every
    /// delegated role the snapshot lists), and the next versions' absence:
    /// what must not change when a request is refused.
    fn state(&self, gun: &str) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut files: Vec<String> = ["root", "targets", "snapshot", "timestamp"]
            .iter()
            .map(|r| format!("{r}.json"))
            .collect();
        let snapshot = self.get(gun, "snapshot.json");
        if snapshot.status() == StatusCode::OK {
            let md = Metadata::<Snapshot>::from_bytes(&snapshot.bytes().unwrap()).unwrap();
            files.extend(md.signed.meta.keys().cloned());
            for (name, meta) in &md.signed.meta {
                files.push(format!("{}.{name}", meta.version + 1));
            }
            files.push(format!("{}.snapshot.json", md.signed.version + 1));
        }
        files.sort();
        files.dedup();
        files
            .into_iter()
            .map(|f| {
                let resp = self.get(gun, &f);
                let bytes = match resp.status() {
                    StatusCode::OK => Some(resp.bytes().unwrap().to_vec()),
                    StatusCode::NOT_FOUND => None,
                    other => panic!("GET {f}: {other}"),
                };
                (f, bytes)
            })
            .collect()
    }
}

/// A publisher's keys and the latest metadata it signed.
struct Publisher {
    gun: String,
    root_keys: Vec<SigningKey>,
    root_threshold: u64,
    targets_key: SigningKey,
    timestamp: PublicKey,
    snapshot: PublicKey,
    root_version: u64,
}

fn far() -> chrono::DateTime<Utc> {
    Utc::now() + Duration::days(30)
}

fn target(length: u64) -> TargetFile {
    let digest = sha256_hex(&length.to_be_bytes());
    TargetFile {
        length,
        hashes: [("sha256".to_string(), digest)].into_iter().collect(),
        custom: Some(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json"})),
        extra: Default::default(),
    }
}

fn targets_with(version: u64, tags: &[&str]) -> Targets {
    let mut t = Targets::new(version, far());
    for (i, tag) in tags.iter().enumerate() {
        t.targets.insert(tag.to_string(), target(100 + i as u64));
    }
    t
}

impl Publisher {
    /// Fetch the server's online keys for `gun` and generate our own.
    fn new(api: &Api, gun: &str) -> Publisher {
        Publisher {
            gun: gun.to_string(),
            root_keys: vec![SigningKey::generate()],
            root_threshold: 1,
            targets_key: SigningKey::generate(),
            timestamp: api.online_key(gun, "timestamp"),
            snapshot: api.online_key(gun, "snapshot"),
            root_version: 1,
        }
    }

    /// Root at `version` listing our current keys and the server's.
    fn root(&self, version: u64) -> Root {
        let mut root = Root::new(Utc::now() + Duration::days(365));
        root.version = version;
        for key in &self.root_keys {
            root.add_key("root", key.public_key());
        }
        root.roles.get_mut("root").unwrap().threshold = self.root_threshold;
        root.add_key("targets", self.targets_key.public_key());
        root.add_key("timestamp", self.timestamp.clone());
        root.add_key("snapshot", self.snapshot.clone());
        root
    }

    fn signed_root(&self, version: u64) -> Vec<u8> {
        let keys: Vec<&SigningKey> = self.root_keys.iter().collect();
        sign(self.root(version), &keys)
    }

    fn targets(&self, targets: Targets) -> Vec<u8> {
        sign(targets, &[&self.targets_key])
    }

    /// Publish root v1 and an empty targets v1.
    fn init(&self, api: &Api) {
        let (status, body) = api.publish(
            &self.gun,
            &[
                ("root", self.signed_root(1)),
                ("targets.json", self.targets(Targets::new(1, far()))),
            ],
        );
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// A refused publish (or other request): `status` and error `code`, else
/// panic with the body. Returns the body.
#[track_caller]
fn assert_refusal((status, body): (StatusCode, Value), expected: StatusCode, code: &str) -> Value {
    assert_eq!((status, error_code(&body)), (expected, code), "{body}");
    body
}

fn error_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("")
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or("")
}

/// Send a raw HTTP/1.1 request (paths reqwest would normalise) and return
/// the status code.
fn raw_status(api: &Api, method: &str, path: &str, token: Option<&str>) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", api.server.port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

#[test]
fn first_publish_then_reads_with_headers() {
    for backend in Backend::all() {
        let api = Api::new(backend);
        let publisher = Publisher::new(&api, GUN);
        // Nothing yet: a python-tuf style walk stops at once.
        assert_eq!(api.get(GUN, "root.json").status(), StatusCode::NOT_FOUND);
        let root = publisher.signed_root(1);
        let targets = publisher.targets(targets_with(1, &["latest"]));
        let (status, body) =
            api.publish(GUN, &[("root", root.clone()), ("targets", targets.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["versions"],
            json!({"root": 1, "targets": 1, "snapshot": 1, "timestamp": 1})
        );

        // Current, versioned and checksummed reads serve the exact bytes.
        let current = api.get(GUN, "root.json");
        assert_eq!(current.status(), StatusCode::OK);
        assert_eq!(current.headers()["content-type"], "application/json");
        assert_eq!(current.headers()["cache-control"], "no-cache");
        let etag = format!("\"{}\"", sha256_hex(&root));
        assert_eq!(current.headers()["etag"], etag.as_str());
        assert_eq!(current.bytes().unwrap().to_vec(), root);
        // Versioned URLs are reused by a deleted and re-created GUN:
        // revalidated, never immutable. Checksum URLs are content-addressed.
        let versioned = api.get(GUN, "1.root.json");
        assert_eq!(versioned.headers()["cache-control"], "no-cache");
        assert_eq!(versioned.headers()["etag"], etag.as_str());
        assert_eq!(versioned.bytes().unwrap().to_vec(), root);
        let by_hash = api.get(GUN, &format!("targets.{}.json", sha256_hex(&targets)));
        assert_eq!(
            by_hash.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(by_hash.bytes().unwrap().to_vec(), targets);
        assert_eq!(api.bytes(GUN, "1.targets.json"), targets);

        // If-None-Match answers 304.
        let resp = api
            .http
            .get(api.url(GUN, "1.root.json"))
            .header("If-None-Match", &etag)
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(resp.headers()["etag"], etag.as_str());

        // Unknown versions, roles and checksums: JSON 404.
        for missing in [
            "2.root.json".to_string(),
            "2.targets.json".into(),
            "ci.json".into(),
            format!("root.{}.json", "0".repeat(64)),
        ] {
            let resp = api.get(GUN, &missing);
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{missing}");
            let body: Value = resp.json().unwrap();
            assert_eq!(error_code(&body), "NOT_FOUND");
        }

        // Timestamp and snapshot are signed by the server keys root lists
        // and describe exactly what is stored.
        let root_md = Metadata::<Root>::from_bytes(&root).unwrap();
        let ts_bytes = api.bytes(GUN, "timestamp.json");
        let ts = Metadata::<Timestamp>::from_bytes(&ts_bytes).unwrap();
        root_md.signed.verify_role("timestamp", &ts).unwrap();
        assert_eq!(ts.signed.version, 1);
        let snap_meta = ts.signed.snapshot_meta().unwrap();
        let snap_bytes = api.bytes(GUN, &format!("{}.snapshot.json", snap_meta.version));
        snap_meta.verify_bytes(&snap_bytes).unwrap();
        let snap = Metadata::<Snapshot>::from_bytes(&snap_bytes).unwrap();
        root_md.signed.verify_role("snapshot", &snap).unwrap();
        let targets_meta = snap.signed.role_meta("targets").unwrap();
        assert_eq!(targets_meta.version, 1);
        targets_meta.verify_bytes(&targets).unwrap();
        assert!(ts.signed.expires > Utc::now() + Duration::hours(23));
        assert!(snap.signed.expires > Utc::now() + Duration::days(6));

        // Keys are stable once created and readable anonymously.
        let resp = api.get(GUN, "timestamp.key");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<PublicKey>().unwrap(), publisher.timestamp);
        // Health and metrics.
        let health = api
            .http
            .get(format!("{}/healthz", api.server.url))
            .send()
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let metrics = metrics(&api.http, &api.server.url);
        assert!(
            metrics.contains("tagtrust_publishes_total{result=\"ok\"} 1"),
            "{metrics}"
        );
        assert_contains(&metrics, "tagtrust_http_requests_total");
    }
}

/// A client that asks for gzip gets the stored bytes gzip-compressed, with
/// the gzip entity tag; one that does not (or refuses gzip) gets the stored
/// bytes; a small file (a timestamp) is never compressed; either entity tag
/// revalidates (304); every answer varies on `Accept-Encoding`.
#[test]
fn gzip_is_served_to_clients_that_ask_and_only_to_them() {
    // The harness's client does not decompress: the bytes on the wire.
    let raw = http();
    let get = |url: &str, accept: Option<&str>, etag: Option<&str>| {
        let mut request = raw.get(url);
        if let Some(accept) = accept {
            request = request.header("Accept-Encoding", accept);
        }
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        request.send().unwrap()
    };
    for backend in Backend::all() {
        let (api, publisher) = Api::published(backend, &[]);
        let tags: Vec<String> = (0..40).map(|n| format!("v1.{n}")).collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let targets = publisher.targets(targets_with(2, &tags));
        let (status, body) = api.publish(GUN, &[("targets", targets.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(targets.len() > 4096, "large enough to be compressed");
        let sha = sha256_hex(&targets);
        let plain_tag = format!("\"{sha}\"");
        let gzip_tag = format!("\"{sha}-gzip\"");
        for file in [
            "targets.json".to_string(),
            "2.targets.json".into(),
            format!("targets.{sha}.json"),
        ] {
            let url = api.url(GUN, &file);
            // Twice: the first answer compresses, the second is the kept copy.
            for _ in 0..2 {
                let resp = get(&url, Some("br;q=1.0, gzip;q=0.8"), None);
                assert_eq!(resp.status(), StatusCode::OK, "{file}");
                assert_eq!(resp.headers()["content-encoding"], "gzip", "{file}");
                assert_eq!(resp.headers()["vary"], "Accept-Encoding", "{file}");
                assert_eq!(resp.headers()["etag"], gzip_tag.as_str(), "{file}");
                let wire = resp.bytes().unwrap();
                assert!(
                    wire.len() < targets.len() / 2,
                    "{file}: {} bytes",
                    wire.len()
                );
                let mut body = Vec::new();
                flate2::read::GzDecoder::new(&wire[..])
                    .read_to_end(&mut body)
                    .unwrap();
                assert_eq!(body, targets, "{file}: the exact stored bytes");
            }
            for accept in [None, Some("identity"), Some("gzip;q=0"), Some("br, zstd")] {
                let resp = get(&url, accept, None);
                assert_eq!(resp.status(), StatusCode::OK, "{file} {accept:?}");
                assert!(
                    resp.headers().get("content-encoding").is_none(),
                    "{accept:?}"
                );
                assert_eq!(resp.headers()["vary"], "Accept-Encoding");
                assert_eq!(resp.headers()["etag"], plain_tag.as_str(), "{accept:?}");
                assert_eq!(resp.bytes().unwrap().to_vec(), targets, "{accept:?}");
            }
            // Either tag revalidates; the answer names the asked-for form.
            for (accept, tag, answer) in [
                (Some("gzip"), &gzip_tag, &gzip_tag),
                (Some("gzip"), &plain_tag, &gzip_tag),
                (None, &gzip_tag, &plain_tag),
            ] {
                let resp = get(&url, accept, Some(tag));
                assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{file} {tag}");
                assert_eq!(resp.headers()["etag"], answer.as_str());
                assert_eq!(resp.headers()["vary"], "Accept-Encoding");
                assert!(resp.bytes().unwrap().is_empty());
            }
        }
        // A timestamp is smaller than gzip is worth: the stored bytes.
        let stored = api.bytes(GUN, "timestamp.json");
        let resp = get(&api.url(GUN, "timestamp.json"), Some("gzip"), None);
        assert!(resp.headers().get("content-encoding").is_none());
        assert_eq!(resp.headers()["vary"], "Accept-Encoding");
        assert_eq!(resp.bytes().unwrap().to_vec(), stored);
    }
}

#[test]
fn targets_updates_and_root_rotation() {
    for backend in Backend::all() {
        let (api, mut publisher) = Api::published(backend, &[]);

        let v2 = publisher.targets(targets_with(2, &["latest", "1.0"]));
        let (status, body) = api.publish(GUN, &[("targets", v2.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["versions"],
            json!({"targets": 2, "snapshot": 2, "timestamp": 2})
        );
        assert_eq!(api.bytes(GUN, "targets.json"), v2);
        let snap = Metadata::<Snapshot>::from_bytes(&api.bytes(GUN, "2.snapshot.json")).unwrap();
        assert_eq!(snap.signed.role_meta("targets").unwrap().version, 2);
        // History is kept.
        assert_eq!(
            Metadata::<Targets>::from_bytes(&api.bytes(GUN, "1.targets.json"))
                .unwrap()
                .signed
                .version,
            1
        );

        // Root v2 with a new root key must be signed by the old AND the new key.
        let old_key = publisher.root_keys[0].clone_key();
        let new_key = SigningKey::generate();
        let root2_signed = |keys: &[&SigningKey]| {
            let mut p_root = publisher.root(2);
            p_root.roles.get_mut("root").unwrap().keyids.clear();
            p_root.keys.clear();
            p_root.add_key("root", new_key.public_key());
            p_root.add_key("targets", publisher.targets_key.public_key());
            p_root.add_key("timestamp", publisher.timestamp.clone());
            p_root.add_key("snapshot", publisher.snapshot.clone());
            sign(p_root, keys)
        };
        for keys in [vec![&new_key], vec![&old_key]] {
            let before = api.state(GUN);
            let (status, body) = api.publish(GUN, &[("root", root2_signed(&keys))]);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error_code(&body), "SIGNATURE");
            assert_eq!(body["errors"][0]["detail"]["role"], "root");
            assert_eq!(api.state(GUN), before);
        }
        let root2 = root2_signed(&[&old_key, &new_key]);
        let (status, body) = api.publish(GUN, &[("root", root2.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(api.bytes(GUN, "2.root.json"), root2);
        assert_eq!(api.get(GUN, "3.root.json").status(), StatusCode::NOT_FOUND);
        publisher.root_keys = vec![new_key];
        publisher.root_version = 2;

        // Root v3 signed only by the old (rotated-out) key is refused.
        let before = api.state(GUN);
        let (status, _) = api.publish(GUN, &[("root", sign(publisher.root(3), &[&old_key]))]);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(api.state(GUN), before);

        // Rotating the targets key: a new root alone would orphan the
        // stored targets, so it needs re-signed targets in the same publish.
        publisher.targets_key = SigningKey::generate();
        let root3 = publisher.signed_root(3);
        let before = api.state(GUN);
        let (status, body) = api.publish(GUN, &[("root", root3.clone())]);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["detail"]["role"], "targets");
        assert_eq!(api.state(GUN), before);
        let t3 = publisher.targets(targets_with(3, &["latest"]));
        let (status, body) = api.publish(GUN, &[("root", root3), ("targets", t3.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(api.bytes(GUN, "targets.json"), t3);
    }
}

/// `SigningKey` is deliberately not `Clone`; tests copy one via its seed.
trait CloneKey {
    fn clone_key(&self) -> SigningKey;
}

impl CloneKey for SigningKey {
    fn clone_key(&self) -> SigningKey {
        SigningKey::from_seed(&self.seed()).unwrap()
    }
}

fn delegating_targets(version: u64, robot: &SigningKey, paths: &[&str]) -> Targets {
    let mut t = targets_with(version, &["latest"]);
    t.delegations = Some(delegations(vec![(
        terminating_role("ci", robot, paths),
        robot,
    )]));
    t
}

#[test]
fn delegated_roles_inside_and_outside_their_paths() {
    for backend in Backend::all() {
        let (api, publisher) = Api::published(backend, &[]);
        let robot = SigningKey::generate();

        // A delegated role nobody delegates to yet.
        let ci1 = sign(targets_with(1, &["release-1"]), &[&robot]);
        let before = api.state(GUN);
        let (status, body) = api.publish(GUN, &[("ci", ci1.clone())]);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "UNKNOWN_ROLE");
        assert_eq!(api.state(GUN), before);

        // The delegation and the delegated role in one publish.
        let t2 = publisher.targets(delegating_targets(2, &robot, &["release-*"]));
        let (status, body) = api.publish(GUN, &[("targets", t2), ("ci.json", ci1.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["versions"]["ci"], 1);
        assert_eq!(api.bytes(GUN, "1.ci.json"), ci1);
        let snap = Metadata::<Snapshot>::from_bytes(&api.bytes(GUN, "snapshot.json")).unwrap();
        snap.signed
            .role_meta("ci")
            .unwrap()
            .verify_bytes(&ci1)
            .unwrap();

        // The robot alone moves a tag inside its paths.
        let ci2 = sign(targets_with(2, &["release-1", "release-2"]), &[&robot]);
        let (status, body) = api.publish(GUN, &[("ci", ci2.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(api.bytes(GUN, "ci.json"), ci2);

        // Outside its paths, signed by the wrong key, or stale: refused.
        let before = api.state(GUN);
        let outside = sign(targets_with(3, &["release-3", "latest"]), &[&robot]);
        let (status, body) = api.publish(GUN, &[("ci", outside)]);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "PATH_NOT_DELEGATED");
        assert_eq!(body["errors"][0]["detail"]["target"], "latest");
        let wrong_key = sign(targets_with(3, &["release-3"]), &[&publisher.targets_key]);
        let (status, body) = api.publish(GUN, &[("ci", wrong_key)]);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "SIGNATURE");
        let stale = sign(targets_with(2, &["release-9"]), &[&robot]);
        let (status, body) = api.publish(GUN, &[("ci", stale)]);
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(
            body["errors"][0]["detail"],
            json!({"role": "ci", "current_version": 2})
        );
        assert_eq!(api.state(GUN), before);
    }
}

/// A delegated role stored but missing from the snapshot's listing (which
/// the server signs itself, so only a damaged database has one) is still
/// read when uploaded: its version is checked against the stored file, so
/// an older copy is answered 409 as anywhere else (unread, it was taken to
/// be new and only the store's unique versions stopped it, with a 500).
#[test]
fn an_uploaded_role_the_snapshot_does_not_list_is_checked_against_the_stored_one() {
    use tagtrust_tests::database::{postgres_query, sqlite_file, sqlite_query};
    for backend in Backend::all() {
        let (api, publisher) = Api::published(backend, &[]);
        let robot = SigningKey::generate();
        let ci1 = sign(targets_with(1, &["release-1"]), &[&robot]);
        let t2 = publisher.targets(delegating_targets(2, &robot, &["release-*"]));
        let (status, body) = api.publish(GUN, &[("targets", t2), ("ci", ci1.clone())]);
        assert_eq!(status, StatusCode::OK, "{body}");
        let ci2 = sign(targets_with(2, &["release-2"]), &[&robot]);
        let (status, body) = api.publish(GUN, &[("ci", ci2)]);
        assert_eq!(status, StatusCode::OK, "{body}");

        // The current snapshot's listing loses `ci.json` (and its sha256
        // changes, so nothing the server kept of it is used).
        let current_snapshot = format!(
            "gun = '{GUN}' AND role = 'snapshot' AND version = \
             (SELECT version FROM current_metadata WHERE gun = '{GUN}' AND role = 'snapshot')"
        );
        let changed = match &api.server.database_url {
            None => sqlite_query(
                &sqlite_file(api.server.data_dir.path()),
                &format!(
                    "UPDATE metadata SET sha256 = 'damaged', bytes = \
                     CAST(replace(CAST(bytes AS TEXT), '\"ci.json\"', '\"cx.json\"') AS BLOB) \
                     WHERE {current_snapshot} RETURNING role"
                ),
            ),
            Some(url) => postgres_query(
                url,
                &format!(
                    "UPDATE metadata SET sha256 = 'damaged', bytes = convert_to(replace(\
                     convert_from(bytes, 'UTF8'), '\"ci.json\"', '\"cx.json\"'), 'UTF8') \
                     WHERE {current_snapshot} RETURNING role::text"
                ),
            ),
        };
        assert_eq!(changed, ["snapshot"]);

        // Version 1 again: older than the stored version 2, refused.
        let (status, body) = api.publish(GUN, &[("ci", ci1)]);
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(
            body["errors"][0]["detail"],
            json!({"role": "ci", "current_version": 2})
        );
        // Version 3 is taken, and listed again.
        let ci3 = sign(targets_with(3, &["release-3"]), &[&robot]);
        let (status, body) = api.publish(GUN, &[("ci", ci3)]);
        assert_eq!(status, StatusCode::OK, "{body}");
        let snap = Metadata::<Snapshot>::from_bytes(&api.bytes(GUN, "snapshot.json")).unwrap();
        assert_eq!(snap.signed.role_meta("ci").unwrap().version, 3);
    }
}

#[test]
fn invalid_uploads_are_refused_and_change_nothing() {
    for backend in Backend::all() {
        let api = Api::new(backend);
        let publisher = Publisher::new(&api, GUN);

        // First publish without root, or without targets.
        let t1 = publisher.targets(Targets::new(1, far()));
        assert_refusal(
            api.publish(GUN, &[("targets", t1.clone())]),
            StatusCode::BAD_REQUEST,
            "MISSING_ROLE",
        );
        assert_refusal(
            api.publish(GUN, &[("root", publisher.signed_root(1))]),
            StatusCode::BAD_REQUEST,
            "MISSING_ROLE",
        );
        // A first root that does not list the server's keys.
        let mut foreign = publisher.root(1);
        let stranger = SigningKey::generate();
        foreign.roles.get_mut("timestamp").unwrap().keyids.clear();
        foreign.add_key("timestamp", stranger.public_key());
        foreign.prune_keys();
        let foreign = sign(foreign, &[&publisher.root_keys[0]]);
        assert_refusal(
            api.publish(GUN, &[("root", foreign), ("targets", t1.clone())]),
            StatusCode::BAD_REQUEST,
            "SERVER_KEYS",
        );
        // A first root at version 2.
        assert_refusal(
            api.publish(
                GUN,
                &[("root", publisher.signed_root(2)), ("targets", t1.clone())],
            ),
            StatusCode::BAD_REQUEST,
            "VERSION",
        );
        assert_eq!(api.get(GUN, "root.json").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            api.get(GUN, "timestamp.json").status(),
            StatusCode::NOT_FOUND
        );

        publisher.init(&api);
        let before = api.state(GUN);
        let expired = {
            let mut t = targets_with(2, &["x"]);
            t.expires = Utc::now() - Duration::seconds(5);
            publisher.targets(t)
        };
        let bad_sig = {
            let mut v: Value =
                serde_json::from_slice(&publisher.targets(targets_with(2, &["x"]))).unwrap();
            v["signed"]["targets"]["x"]["length"] = json!(666);
            serde_json::to_vec(&v).unwrap()
        };
        let below_threshold = {
            // A root v2 demanding two root signatures, carrying one.
            let second = SigningKey::generate();
            let mut root = publisher.root(2);
            root.add_key("root", second.public_key());
            root.roles.get_mut("root").unwrap().threshold = 2;
            sign(root, &[&publisher.root_keys[0]])
        };
        let deep = format!(
            "{{\"signatures\":[],\"signed\":{}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        )
        .into_bytes();
        let cases: Vec<(Files, StatusCode, &str)> = vec![
            (
                vec![("targets", b"{not json".to_vec())],
                StatusCode::BAD_REQUEST,
                "MALFORMED_METADATA",
            ),
            (
                vec![("targets", publisher.signed_root(2))],
                StatusCode::BAD_REQUEST,
                "MALFORMED_METADATA",
            ),
            (vec![("targets", deep)], StatusCode::BAD_REQUEST, "TOO_DEEP"),
            (
                vec![("targets", bad_sig)],
                StatusCode::BAD_REQUEST,
                "SIGNATURE",
            ),
            (
                vec![("targets", sign(targets_with(2, &["x"]), &[&stranger]))],
                StatusCode::BAD_REQUEST,
                "SIGNATURE",
            ),
            (
                vec![("root", below_threshold)],
                StatusCode::BAD_REQUEST,
                "SIGNATURE",
            ),
            (
                vec![("targets", expired)],
                StatusCode::BAD_REQUEST,
                "EXPIRED",
            ),
            (
                vec![("targets", publisher.targets(targets_with(5, &["x"])))],
                StatusCode::BAD_REQUEST,
                "VERSION",
            ),
            (
                vec![("targets", publisher.targets(targets_with(1, &["x"])))],
                StatusCode::CONFLICT,
                "CONFLICT",
            ),
            (
                vec![("root", publisher.signed_root(1))],
                StatusCode::CONFLICT,
                "CONFLICT",
            ),
            (
                vec![("snapshot", b"{}".to_vec())],
                StatusCode::BAD_REQUEST,
                "ROLE_NOT_UPLOADABLE",
            ),
            (
                vec![("timestamp.json", b"{}".to_vec())],
                StatusCode::BAD_REQUEST,
                "ROLE_NOT_UPLOADABLE",
            ),
            (
                vec![("../targets", t1.clone())],
                StatusCode::BAD_REQUEST,
                "INVALID_ROLE",
            ),
            (
                vec![(".hidden", t1.clone())],
                StatusCode::BAD_REQUEST,
                "INVALID_ROLE",
            ),
            (
                vec![
                    ("targets", publisher.targets(targets_with(2, &["x"]))),
                    ("targets.json", publisher.targets(targets_with(2, &["y"]))),
                ],
                StatusCode::BAD_REQUEST,
                "DUPLICATE_ROLE",
            ),
            // A good file alongside a bad one: nothing of it is applied.
            (
                vec![
                    ("targets", publisher.targets(targets_with(2, &["x"]))),
                    ("ci", b"[]".to_vec()),
                ],
                StatusCode::BAD_REQUEST,
                "MALFORMED_METADATA",
            ),
        ];
        for (files, want_status, want_code) in cases {
            let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
            let (status, body) = api.publish(GUN, &files);
            assert_eq!(status, want_status, "{names:?}: {body}");
            assert_eq!(error_code(&body), want_code, "{names:?}: {body}");
            assert!(!error_message(&body).is_empty());
            assert_eq!(api.state(GUN), before, "{names:?} changed the repository");
        }
        // The 409 names the current version, for the client's retry.
        let (_, body) = api.publish(
            GUN,
            &[("targets", publisher.targets(targets_with(1, &["x"])))],
        );
        assert_eq!(
            body["errors"][0]["detail"],
            json!({"role": "targets", "current_version": 1})
        );

        // Framing problems: too many parts, oversized body and file, wrong
        // field name, not multipart at all.
        let many: Vec<(&str, Vec<u8>)> = (0..1101).map(|_| ("ci", b"{}".to_vec())).collect();
        assert_refusal(
            api.publish(GUN, &many),
            StatusCode::BAD_REQUEST,
            "TOO_MANY_PARTS",
        );
        let huge = vec![b' '; 9 * 1024 * 1024];
        assert_refusal(
            api.publish(GUN, &[("targets", huge)]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "TOO_LARGE",
        );
        let big_file = vec![b' '; 5 * 1024 * 1024];
        assert_refusal(
            api.publish(GUN, &[("targets", big_file)]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "TOO_LARGE",
        );
        let form = Form::new().part("other", Part::bytes(t1.clone()).file_name("targets"));
        let resp = api
            .http
            .post(api.server.tuf_url(GUN))
            .bearer_auth(&api.push)
            .multipart(form)
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let resp = api
            .http
            .post(api.server.tuf_url(GUN))
            .bearer_auth(&api.push)
            .header("Content-Type", "application/json")
            .body(t1.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().unwrap();
        assert_eq!(error_code(&body), "BAD_MULTIPART");
        assert_eq!(api.state(GUN), before);
        let metrics = metrics(&api.http, &api.server.url);
        assert_contains(&metrics, "tagtrust_publish_conflicts_total 3");
    }
}

#[test]
fn hostile_guns_and_role_names_are_refused() {
    for backend in Backend::all() {
        let (api, _) = Api::published(backend, &[]);
        let before = api.state(GUN);
        let long = "a".repeat(300);
        let hostile_guns = [
            "acme/../registry.example.com/acme/app",
            "acme%2Fapp",
            "acme/app%00",
            "acme//app",
            "acme/APP",
            "acme/%2E%2E/app",
            long.as_str(),
        ];
        for gun in hostile_guns {
            for (method, file) in [
                ("GET", "root.json"),
                ("GET", "timestamp.key"),
                ("POST", "timestamp.key"),
                ("POST", ""),
                ("DELETE", ""),
            ] {
                let status = raw_status(
                    &api,
                    method,
                    &format!("/v2/{gun}/_trust/tuf/{file}"),
                    Some(&api.push),
                );
                assert_eq!(status, 400, "{method} {gun} {file}");
            }
        }
        for file in [
            "%2E%2E.json",
            "a%2Fb.json",
            "a%00b.json",
            ".json",
            "x%5Cy.key",
        ] {
            let status = raw_status(&api, "GET", &format!("/v2/{GUN}/_trust/tuf/{file}"), None);
            assert_eq!(status, 400, "{file}");
        }
        // Roles the server does not manage have no key.
        let resp = api.key_request(Method::GET, GUN, "targets");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(raw_status(&api, "GET", "/v2/nothing-here", None), 404);
        assert_eq!(api.state(GUN), before);
    }
}

#[test]
fn concurrent_publishers_lose_nothing() {
    for backend in Backend::all() {
        let (api, publisher) = Api::published(backend, &[]);
        let seed = publisher.targets_key.seed();
        let (threads, per_thread) = (4, 5);
        let conflicts = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let api = &api;
                let conflicts = &conflicts;
                scope.spawn(move || {
                    let key = SigningKey::from_seed(&seed).unwrap();
                    for i in 0..per_thread {
                        let tag = format!("t{t}-{i}");
                        for attempt in 0.. {
                            assert!(attempt < 200, "{tag}: too many retries");
                            let current =
                                Metadata::<Targets>::from_bytes(&api.bytes(GUN, "targets.json"))
                                    .unwrap();
                            let mut next = current.signed.clone();
                            next.version += 1;
                            next.targets.insert(tag.clone(), target(t * 100 + i));
                            let (status, body) =
                                api.publish(GUN, &[("targets", sign(next, &[&key]))]);
                            match status {
                                StatusCode::OK => break,
                                StatusCode::CONFLICT => {
                                    conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                other => panic!("{tag}: {other} {body}"),
                            }
                        }
                    }
                });
            }
        });
        let total = threads * per_thread;
        let final_targets =
            Metadata::<Targets>::from_bytes(&api.bytes(GUN, "targets.json")).unwrap();
        assert_eq!(final_targets.signed.version, total + 1);
        assert_eq!(final_targets.signed.targets.len() as u64, total);
        // Every version is kept and the served snapshot matches the targets.
        for v in 1..=total + 1 {
            assert_eq!(
                api.get(GUN, &format!("{v}.targets.json")).status(),
                StatusCode::OK
            );
        }
        let ts = Metadata::<Timestamp>::from_bytes(&api.bytes(GUN, "timestamp.json")).unwrap();
        assert_eq!(ts.signed.version, total + 1);
        let snap_bytes = api.bytes(
            GUN,
            &format!(
                "{}.snapshot.json",
                ts.signed.snapshot_meta().unwrap().version
            ),
        );
        ts.signed
            .snapshot_meta()
            .unwrap()
            .verify_bytes(&snap_bytes)
            .unwrap();
        let snap = Metadata::<Snapshot>::from_bytes(&snap_bytes).unwrap();
        snap.signed
            .role_meta("targets")
            .unwrap()
            .verify_bytes(&api.bytes(GUN, "targets.json"))
            .unwrap();
        eprintln!("{backend:?}: {} conflicts retried", conflicts.into_inner());
    }
}

#[test]
fn writes_need_the_right_token() {
    for backend in Backend::all() {
        let (api, publisher) = Api::published(backend, &[]);
        let other = api.server.create_token(&["push:other/*"]);
        let pull = api.server.create_token(&["pull:*"]);
        let admin = api.server.create_token(&["admin:registry.example.com/*"]);
        let update = publisher.targets(targets_with(2, &["evil"]));
        let before = api.state(GUN);

        for (token, want) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some("tt_wrong"), StatusCode::UNAUTHORIZED),
            (Some(other.as_str()), StatusCode::FORBIDDEN),
            (Some(pull.as_str()), StatusCode::FORBIDDEN),
        ] {
            let (status, body) = api.publish_as(GUN, token, &[("targets", update.clone())]);
            assert_eq!(status, want, "{token:?}: {body}");
            let mut rotate = api.http.post(api.url(GUN, "timestamp.key"));
            let mut delete = api.http.delete(api.server.tuf_url(GUN));
            let mut create = api.http.get(api.url("acme/new", "timestamp.key"));
            if let Some(token) = token {
                rotate = rotate.bearer_auth(token);
                delete = delete.bearer_auth(token);
                create = create.bearer_auth(token);
            }
            let resp = rotate.send().unwrap();
            assert_eq!(resp.status(), want, "rotate {token:?}");
            if want == StatusCode::UNAUTHORIZED {
                assert!(resp.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"));
            }
            assert_eq!(delete.send().unwrap().status(), want, "delete {token:?}");
            assert_eq!(
                create.send().unwrap().status(),
                want,
                "create key {token:?}"
            );
        }
        // push is not admin.
        let resp = api
            .http
            .delete(api.server.tuf_url(GUN))
            .bearer_auth(&api.push)
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(api.state(GUN), before);
        assert_eq!(
            api.get("acme/new", "timestamp.key").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(api.online_key(GUN, "timestamp"), publisher.timestamp);

        // Admin implies push: it can publish, and delete.
        let (status, body) = api.publish_as(GUN, Some(&admin), &[("targets", update)]);
        assert_eq!(status, StatusCode::OK, "{body}");
        let resp = api
            .http
            .delete(api.server.tuf_url(GUN))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        for file in ["root.json", "1.targets.json", "timestamp.json"] {
            assert_eq!(api.get(GUN, file).status(), StatusCode::NOT_FOUND, "{file}");
        }
        assert_eq!(
            api.get(GUN, "timestamp.key").status(),
            StatusCode::UNAUTHORIZED
        );

        // A revoked token stops working at once.
        let server_cmd = || {
            let mut cmd = std::process::Command::new(tagtrust_tests::bin_path("tagtrust-server"));
            cmd.args(api.server.storage_args()).env("RUST_LOG", "warn");
            cmd
        };
        let out = server_cmd()
            .args([
                "token",
                "create",
                "--scope",
                "admin:*",
                "--name",
                "revoke-me",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        // (A key request that needs push: the first key of a new GUN.)
        let key_status = |token: &str, gun: &str| {
            api.http
                .get(api.url(gun, "snapshot.key"))
                .bearer_auth(token)
                .send()
                .unwrap()
                .status()
        };
        assert_eq!(key_status(&token, "acme/revoke-1"), StatusCode::OK);
        let list = server_cmd().args(["token", "list"]).output().unwrap();
        let list = String::from_utf8(list.stdout).unwrap();
        assert!(!list.contains(&token), "token list must not show secrets");
        let id = list
            .lines()
            .find(|l| l.contains("revoke-me"))
            .and_then(|l| l.split('\t').next())
            .unwrap()
            .to_string();
        let out = server_cmd()
            .args(["token", "revoke", &id])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            key_status(&token, "acme/revoke-2"),
            StatusCode::UNAUTHORIZED
        );
        let out = server_cmd()
            .args(["token", "revoke", &id])
            .output()
            .unwrap();
        assert!(!out.status.success(), "revoking twice is an error");
        let out = server_cmd()
            .args(["token", "create", "--scope", "write:*"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "unknown scope actions are refused");
    }
}

#[test]
fn configured_expiries_are_used() {
    for backend in Backend::all() {
        let api = Api::with_args(
            backend,
            &[
                "--timestamp-expiry-secs",
                "60",
                "--snapshot-expiry-secs",
                "120",
                "--resign-interval-secs",
                "10",
            ],
        );
        let publisher = Publisher::new(&api, GUN);
        publisher.init(&api);
        let ts = Metadata::<Timestamp>::from_bytes(&api.bytes(GUN, "timestamp.json")).unwrap();
        let snap = Metadata::<Snapshot>::from_bytes(&api.bytes(GUN, "snapshot.json")).unwrap();
        let now = Utc::now();
        assert!(
            ts.signed.expires <= now + Duration::seconds(61),
            "{}",
            ts.signed.expires
        );
        assert!(ts.signed.expires > now + Duration::seconds(30));
        assert!(snap.signed.expires <= now + Duration::seconds(121));
        assert!(snap.signed.expires > now + Duration::seconds(90));
    }
}

#[test]
fn online_key_rotation_takes_effect_with_the_next_root() {
    for backend in Backend::all() {
        let (api, mut publisher) = Api::published(backend, &[]);
        let resp = api.key_request(Method::POST, GUN, "timestamp");
        assert_eq!(resp.status(), StatusCode::CREATED);
        let new_key: PublicKey = resp.json().unwrap();
        assert_ne!(new_key, publisher.timestamp);
        assert_eq!(api.online_key(GUN, "timestamp"), new_key);

        // Until a root lists it, the server keeps signing with the old key.
        let (status, _) = api.publish(
            GUN,
            &[("targets", publisher.targets(targets_with(2, &["a"])))],
        );
        assert_eq!(status, StatusCode::OK);
        let root1 = Metadata::<Root>::from_bytes(&api.bytes(GUN, "1.root.json")).unwrap();
        let ts = Metadata::<Timestamp>::from_bytes(&api.bytes(GUN, "timestamp.json")).unwrap();
        root1.signed.verify_role("timestamp", &ts).unwrap();

        publisher.timestamp = new_key;
        let (status, body) = api.publish(GUN, &[("root", publisher.signed_root(2))]);
        assert_eq!(status, StatusCode::OK, "{body}");
        let root2 = Metadata::<Root>::from_bytes(&api.bytes(GUN, "2.root.json")).unwrap();
        let ts = Metadata::<Timestamp>::from_bytes(&api.bytes(GUN, "timestamp.json")).unwrap();
        root2.signed.verify_role("timestamp", &ts).unwrap();
        assert!(root1.signed.verify_role("timestamp", &ts).is_err());
    }
}

#[test]
fn reads_can_require_a_pull_token() {
    for backend in Backend::all() {
        let (api, _) = Api::published(backend, &["--require-pull"]);
        let resp = api.get(GUN, "root.json");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            api.get(GUN, "timestamp.key").status(),
            StatusCode::UNAUTHORIZED
        );
        let pull = api.server.create_token(&["pull:registry.example.com/*"]);
        let elsewhere = api.server.create_token(&["pull:other/*"]);
        let get = |token: &str| {
            api.http
                .get(api.url(GUN, "root.json"))
                .bearer_auth(token)
                .send()
                .unwrap()
                .status()
        };
        assert_eq!(get(&pull), StatusCode::OK);
        assert_eq!(get(&elsewhere), StatusCode::FORBIDDEN);
        // push implies pull.
        assert_eq!(get(&api.push), StatusCode::OK);
    }
}

#[test]
fn configuration_from_file_and_environment() {
    for backend in Backend::all() {
        // A TOML file with the master key and expiries: no key file is
        // generated, and the expiry is the file's.
        let config_dir = tempfile::tempdir().unwrap();
        let config = config_dir.path().join("server.toml");
        // 32 bytes: 32 ASCII hex digits.
        let master = hex::encode([7u8; 16]);
        let master = base64(master.as_bytes());
        std::fs::write(
            &config,
            format!(
                "master_key = \"{master}\"\ntimestamp_expiry_secs = 90\nresign_interval_secs = 10\n"
            ),
        )
        .unwrap();
        let (api, _) = Api::published(backend, &["--config", config.to_str().unwrap()]);
        assert!(!api.server.data_dir.path().join("master.key").exists());
        let ts = Metadata::<Timestamp>::from_bytes(&api.bytes(GUN, "timestamp.json")).unwrap();
        assert!(ts.signed.expires <= Utc::now() + Duration::seconds(91));
    }

    // TAGTRUST_SERVER_* variables: the data directory from the environment.
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tagtrust_tests::bin_path("tagtrust-server"))
        .args(["token", "create", "--scope", "pull:*"])
        .env("TAGTRUST_SERVER_DATA_DIR", data.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    succeeded(&out);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .starts_with("tt_"));
    assert!(data.path().join("tagtrust.db").exists());

    // A malformed master key is a start-up error, not a silent new key.
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tagtrust_tests::bin_path("tagtrust-server"))
        .args([
            "--listen",
            &format!("127.0.0.1:{}", tagtrust_tests::free_port()),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("TAGTRUST_SERVER_MASTER_KEY", "too-short")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key"));
    assert!(!data.path().join("master.key").exists());
}

/// A publisher with two robots, `release-robot` (release-*) and
/// `dev-robot` (dev-*), each with its own key.
fn two_robots(publisher: &Publisher, release: &SigningKey, dev: &SigningKey) -> Targets {
    let mut t = targets_with(2, &["latest"]);
    t.delegations = Some(delegations(vec![
        (
            terminating_role("release-robot", release, &["release-*"]),
            release,
        ),
        (terminating_role("dev-robot", dev, &["dev-*"]), dev),
    ]));
    let _ = publisher;
    t
}

/// Issue 7 item 1: a robot delegated `release-*` publishes its role with a
/// sub-delegation named like its sibling `dev-robot` (or like itself).
/// Refused with 400 and a reason naming both delegators; nothing changes,
/// and the sibling keeps publishing.
#[test]
fn a_robot_cannot_claim_a_sibling_name_in_its_own_delegations() {
    for backend in Backend::all() {
        let (api, publisher) = Api::published(backend, &[]);
        let (release, dev) = (SigningKey::generate(), SigningKey::generate());
        let t2 = publisher.targets(two_robots(&publisher, &release, &dev));
        let (status, body) = api.publish(
            GUN,
            &[
                ("targets", t2),
                ("dev-robot", sign(targets_with(1, &["dev-1"]), &[&dev])),
            ],
        );
        assert_eq!(status, StatusCode::OK, "{body}");

        let before = api.state(GUN);
        for claimed in ["dev-robot", "release-robot"] {
            let mut hostile = targets_with(1, &["release-1"]);
            hostile.delegations = Some(delegations(vec![(
                terminating_role(claimed, &release, &["release-*"]),
                &release,
            )]));
            let (status, body) = api.publish(GUN, &[("release-robot", sign(hostile, &[&release]))]);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{claimed}: {body}");
            assert_eq!(error_code(&body), "AMBIGUOUS_DELEGATION", "{body}");
            let message = error_message(&body);
            assert!(
                message.contains("more than one role (targets, release-robot)")
                    && message.contains(claimed),
                "{message}"
            );
            assert_eq!(body["errors"][0]["detail"]["role"], "release-robot");
            assert_eq!(api.state(GUN), before, "{claimed}: nothing stored");
        }

        // The sibling is not locked out; the robot publishes within its own
        // names.
        let (status, body) = api.publish(
            GUN,
            &[(
                "dev-robot",
                sign(targets_with(2, &["dev-1", "dev-2"]), &[&dev]),
            )],
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["versions"]["dev-robot"], 2);
        let mut own = targets_with(1, &["release-1"]);
        own.delegations = Some(delegations(vec![(
            terminating_role("release-helper", &dev, &["release-h*"]),
            &dev,
        )]));
        let (status, body) = api.publish(GUN, &[("release-robot", sign(own, &[&release]))]);
        assert_eq!(status, StatusCode::OK, "{body}");

        // Nor may the top-level targets then delegate the robot's name.
        let mut clash = two_robots(&publisher, &release, &dev);
        clash.version = 3;
        if let Some(d) = clash.delegations.as_mut() {
            let mut helper = d.roles.as_ref().unwrap()[1].clone();
            helper.name = "release-helper".into();
            d.roles.as_mut().unwrap().push(helper);
        }
        assert_refusal(
            api.publish(GUN, &[("targets", publisher.targets(clash))]),
            StatusCode::BAD_REQUEST,
            "AMBIGUOUS_DELEGATION",
        );
    }
}

/// `key` listed a second time under another key ID, its hex in upper case.
fn alias(key: &SigningKey) -> (String, PublicKey) {
    let mut public = key.public_key();
    public.keyval.public = public.keyval.public.to_uppercase();
    (sha256_hex(public.keyval.public.as_bytes()), public)
}

/// Issue 7 item 6: a 2-of-2 root (or a delegation) listing one key under
/// two key IDs is refused at publish, first root and successor alike.
#[test]
fn one_key_listed_twice_is_refused() {
    for backend in Backend::all() {
        let api = Api::new(backend);
        let publisher = Publisher::new(&api, GUN);
        let key = &publisher.root_keys[0];
        let (alias_id, alias_key) = alias(key);
        let two_of_two = |version: u64| {
            let mut root = publisher.root(version);
            root.keys.insert(alias_id.clone(), alias_key.clone());
            let role = root.roles.get_mut("root").unwrap();
            role.keyids.push(alias_id.clone());
            role.threshold = 2;
            let mut md = Metadata::new(root).unwrap();
            md.sign(key);
            let mut again = key.sign(md.canonical_signed());
            again.keyid = alias_id.clone();
            md.signatures.push(again);
            md.to_bytes()
        };
        let targets = publisher.targets(Targets::new(1, far()));
        let before = api.state(GUN);
        let body = assert_refusal(
            api.publish(
                GUN,
                &[("root", two_of_two(1)), ("targets", targets.clone())],
            ),
            StatusCode::BAD_REQUEST,
            "DUPLICATE_KEY",
        );
        assert_contains(error_message(&body), "one key under two key IDs");
        assert_eq!(api.state(GUN), before);

        publisher.init(&api);
        let before = api.state(GUN);
        assert_refusal(
            api.publish(GUN, &[("root", two_of_two(2))]),
            StatusCode::BAD_REQUEST,
            "DUPLICATE_KEY",
        );

        // A delegation listing a robot's key twice.
        let robot = SigningKey::generate();
        let (robot_alias, robot_alias_key) = alias(&robot);
        let mut t2 = delegating_targets(2, &robot, &["release-*"]);
        let d = t2.delegations.as_mut().unwrap();
        d.keys.insert(robot_alias.clone(), robot_alias_key);
        let role = &mut d.roles.as_mut().unwrap()[0];
        role.keyids.push(robot_alias);
        role.threshold = 2;
        assert_refusal(
            api.publish(GUN, &[("targets", publisher.targets(t2))]),
            StatusCode::BAD_REQUEST,
            "DUPLICATE_KEY",
        );
        assert_eq!(api.state(GUN), before);
    }
}

/// Issue 7 items 7 and 8: target names that are not OCI tags (a forged
/// `list` line, a path, an empty name) and key IDs that are not 64
/// lowercase hex are refused with a 400 and a reason.
#[test]
fn target_names_and_key_ids_are_checked() {
    for backend in Backend::all() {
        let (api, publisher) = Api::published(backend, &[]);
        let before = api.state(GUN);
        let forged = "dev-zzz\t-\t0\tdev-robot\nlatest\tsha256:00\t1234\ttargets";
        let long = "a".repeat(129);
        for name in [
            forged,
            "a/b",
            "",
            ".hidden",
            "-x",
            "x\u{202e}",
            long.as_str(),
        ] {
            let (status, body) = api.publish(
                GUN,
                &[("targets", publisher.targets(targets_with(2, &[name])))],
            );
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
            assert_eq!(error_code(&body), "INVALID_TARGET_NAME", "{body}");
            assert_eq!(body["errors"][0]["detail"]["role"], "targets");
        }
        assert_eq!(api.state(GUN), before);

        // A signature key ID with a terminal escape, and a root listing its
        // key under an upper-case ID: refused at parse.
        let mut md = Metadata::new(targets_with(2, &["ok"])).unwrap();
        let mut sig = publisher.targets_key.sign(md.canonical_signed());
        sig.keyid = format!("{}\r\u{1b}[2K", &sig.keyid[..60]);
        md.signatures.push(sig);
        let body = assert_refusal(
            api.publish(GUN, &[("targets", md.to_bytes())]),
            StatusCode::BAD_REQUEST,
            "MALFORMED_METADATA",
        );
        assert_contains(error_message(&body), "64 lowercase hex");
        let mut root = publisher.root(2);
        let id = publisher.root_keys[0].key_id();
        let key = root.keys.remove(&id).unwrap();
        root.keys.insert(id.to_uppercase(), key);
        for role in root.roles.values_mut() {
            for k in role.keyids.iter_mut().filter(|k| **k == id) {
                *k = id.to_uppercase();
            }
        }
        assert_refusal(
            api.publish(GUN, &[("root", sign(root, &[&publisher.root_keys[0]]))]),
            StatusCode::BAD_REQUEST,
            "MALFORMED_METADATA",
        );
        assert_eq!(api.state(GUN), before);

        // A valid tag still publishes.
        let (status, body) = api.publish(
            GUN,
            &[(
                "targets",
                publisher.targets(targets_with(2, &["v1.2_rc-3"])),
            )],
        );
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Issue 7 (suspected): a rotation needs a published repository, and only a
/// few rotated keys may wait for a root to list them.
#[test]
fn key_rotation_is_bounded() {
    for backend in Backend::all() {
        let api = Api::new(backend);
        let rotate = |gun: &str| api.key_request(Method::POST, gun, "timestamp");
        let resp = rotate("registry.example.com/acme/never-published");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body: Value = resp.json().unwrap();
        assert_eq!(error_code(&body), "NOT_PUBLISHED", "{body}");

        let mut publisher = Publisher::new(&api, GUN);
        publisher.init(&api);
        let mut newest = None;
        for _ in 0..4 {
            let resp = rotate(GUN);
            assert_eq!(resp.status(), StatusCode::CREATED);
            newest = Some(resp.json::<PublicKey>().unwrap());
        }
        let resp = rotate(GUN);
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        let body: Value = resp.json().unwrap();
        assert_eq!(error_code(&body), "PENDING_KEYS", "{body}");
        assert_eq!(body["errors"][0]["detail"]["pending"], 4);

        // Once a root lists the newest key, rotation works again.
        publisher.timestamp = newest.unwrap();
        let (status, body) = api.publish(GUN, &[("root", publisher.signed_root(2))]);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(rotate(GUN).status(), StatusCode::CREATED);
    }
}
