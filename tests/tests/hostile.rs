//! Hostile input against every endpoint of the real `tagtrust-server`, on
//! SQLite and (with `TAGTRUST_TEST_POSTGRES_URL`) PostgreSQL.
//!
//! Malformed, truncated, oversized, deeply nested and non-UTF-8 bodies;
//! hostile GUNs and role names sent over raw TCP (so no client normalises
//! the URL); wrong content types; hostile multipart framing (the same role
//! twice, parts without a filename, path-traversal filenames, an empty body,
//! a part that is not JSON). Every refusal must be a 4xx carrying the JSON
//! error body `{"errors":[{"code","message",...}]}`, never a 5xx or a
//! dropped connection; after each batch the server still answers `/healthz`
//! (the harness never restarts it, so that is the same process), and every
//! stored version of every role and every server key is byte-for-byte what
//! it was before.
//!
//! `api.rs` already covers the basic invalid uploads and a few hostile GUNs;
//! this file extends that to every endpoint and many more shapes.

use reqwest::blocking::Client;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use tagtrust_shared::metadata::Snapshot;
use tagtrust_shared::Metadata;
use tagtrust_tests::{Backend, Cli, TestServer};

const GUN: &str = "registry.example.com/acme/app";
const TUF: &str = "/v2/registry.example.com/acme/app/_trust/tuf/";

/// Every stored version of every role, the current files and both server
/// keys (`None`: not there), by file name.
type State = BTreeMap<String, Option<Vec<u8>>>;

/// A server with one published repository (two targets versions) and
/// tokens of every kind; `before` is its [`Fixture::state`] as published,
/// which hostile requests must leave as it is.
struct Fixture {
    server: TestServer,
    http: Client,
    push: String,
    admin: String,
    before: State,
}

impl Fixture {
    /// Run `test` against a fresh fixture on every backend, its server
    /// started with `args`.
    fn on_every_backend(args: &[&str], test: impl Fn(Backend, &Fixture)) {
        for backend in Backend::all() {
            test(backend, &Fixture::spawn(backend, args));
        }
    }

    fn spawn(backend: Backend, args: &[&str]) -> Fixture {
        let server = TestServer::spawn_with(backend, args);
        let push = server.create_token(&["push:*"]);
        let admin = server.create_token(&["admin:*"]);
        let cli = Cli::new(&server.url).with_token(&push);
        cli.ok(&["init", GUN]);
        for tag in ["latest", "1.0"] {
            cli.tag_set(GUN, tag);
        }
        let mut fx = Fixture {
            server,
            http: Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap(),
            push,
            admin,
            before: State::new(),
        };
        fx.before = fx.state(GUN);
        fx
    }

    /// A file of [`GUN`] as published (it must exist).
    fn stored(&self, file: &str) -> Vec<u8> {
        self.before[file].clone().expect("published")
    }

    fn get(&self, gun: &str, file: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}{file}", self.server.tuf_url(gun)))
            .send()
            .unwrap()
    }

    /// Every stored version of every role (`N.{role}.json` from 1 up to the
    /// first 404, for the top-level roles and every delegated role the
    /// snapshot lists), the current files, and both server keys. Read
    /// anonymously, so reading can never create a key.
    fn state(&self, gun: &str) -> State {
        let mut roles: Vec<String> = ["root", "targets", "snapshot", "timestamp"]
            .iter()
            .map(|r| r.to_string())
            .collect();
        let snapshot = self.get(gun, "snapshot.json");
        if snapshot.status() == 200 {
            let md = Metadata::<Snapshot>::from_bytes(&snapshot.bytes().unwrap()).unwrap();
            for name in md.signed.meta.keys() {
                roles.push(name.trim_end_matches(".json").to_string());
            }
        }
        roles.sort();
        roles.dedup();
        let mut state = BTreeMap::new();
        let mut fetch = |file: String| -> bool {
            let resp = self.get(gun, &file);
            let bytes = match resp.status().as_u16() {
                200 => Some(resp.bytes().unwrap().to_vec()),
                404 => None,
                other => panic!("GET {gun} {file}: {other}"),
            };
            let found = bytes.is_some();
            state.insert(file, bytes);
            found
        };
        for role in &roles {
            fetch(format!("{role}.json"));
            for version in 1u64.. {
                assert!(version < 10_000, "runaway version walk for {role}");
                if !fetch(format!("{version}.{role}.json")) {
                    break;
                }
            }
        }
        for role in ["timestamp", "snapshot"] {
            let resp = self.get(gun, &format!("{role}.key"));
            let bytes = match resp.status().as_u16() {
                200 => Some(resp.bytes().unwrap().to_vec()),
                // No key yet: creating one needs push, so anonymous is 401.
                401 => None,
                other => panic!("GET {gun} {role}.key: {other}"),
            };
            state.insert(format!("{role}.key"), bytes);
        }
        state
    }

    /// The same process is still serving: `/healthz` answers 200 on the
    /// port it was started on (the harness never restarts it by itself).
    fn assert_alive(&self, after: &str) {
        let resp = self
            .http
            .get(format!("{}/healthz", self.server.url))
            .send()
            .unwrap_or_else(|e| panic!("server gone after {after}: {e}"));
        assert_eq!(resp.status(), 200, "healthz after {after}");
    }
}

/// A response read off a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send `head` (request line and headers, without the final blank line)
/// plus `body` over a fresh connection and read the whole response.
fn raw(port: u16, head: &[u8], body: &[u8]) -> RawResponse {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    // The server may answer (and close) before reading everything.
    let _ = stream.write_all(&request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    parse_response(&response)
        .unwrap_or_else(|| panic!("no HTTP response to {:?}", String::from_utf8_lossy(head)))
}

fn parse_response(bytes: &[u8]) -> Option<RawResponse> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut decoded = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = decoded;
    }
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

impl Fixture {
    /// `METHOD path` with optional bearer token, content type and a body.
    fn request(
        &self,
        method: &str,
        path: &[u8],
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> RawResponse {
        let mut head = Vec::new();
        head.extend_from_slice(method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(path);
        head.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if let Some(token) = token {
            head.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
        }
        if let Some(ct) = content_type {
            head.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        raw(self.server.port, &head, body)
    }
}

/// A 4xx with the API's JSON error body, naming a code and a reason.
fn assert_json_4xx(resp: &RawResponse, what: &str) -> String {
    assert!(
        (400..500).contains(&resp.status),
        "{what}: expected a 4xx, got {} {}",
        resp.status,
        String::from_utf8_lossy(&resp.body)
    );
    assert!(
        resp.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "{what}: not JSON: {resp:?}"
    );
    let body: Value = serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {resp:?}"));
    let code = body["errors"][0]["code"].as_str().unwrap_or("");
    let message = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(!code.is_empty(), "{what}: no error code in {body}");
    assert!(!message.is_empty(), "{what}: no error message in {body}");
    code.to_string()
}

const BOUNDARY: &str = "----tagtrust-hostile-boundary";

/// A multipart body from raw part headers and contents.
/// A hostile request's answer (`what`: the request, `part`: the hostile
/// part of its path) is a JSON 4xx, or, when `part` holds raw non-ASCII
/// bytes, a plain 400: such a request line is not valid HTTP at all, and the
/// HTTP parser refuses it before any handler runs, so there is no JSON, but
/// it must be a plain 400, never anything else. True for the plain 400.
fn assert_refused_request(resp: &RawResponse, what: &str, part: &[u8]) -> bool {
    if resp.header("content-type").is_none() && resp.body.is_empty() {
        assert_eq!(resp.status, 400, "{what}");
        assert!(
            part.iter().any(|b| !b.is_ascii()),
            "{what}: bare 400 for an ASCII request line"
        );
        true
    } else {
        assert_json_4xx(resp, what);
        false
    }
}

fn multipart(parts: &[(&[u8], &[u8])], close: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, content) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(headers);
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    if close {
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    }
    body
}

fn file_part(filename: &str) -> Vec<u8> {
    format!("Content-Disposition: form-data; name=\"files\"; filename=\"{filename}\"").into_bytes()
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// Hostile bodies: (label, bytes). `valid` is a genuine metadata file used
/// for the truncated case.
fn hostile_bodies(valid: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut non_utf8 = b"{\"signed\":\"".to_vec();
    non_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80]);
    non_utf8.extend_from_slice(b"\",\"signatures\":[]}");
    vec![
        ("malformed", b"{not json".to_vec()),
        ("truncated", valid[..valid.len() / 2].to_vec()),
        ("truncated-one-byte", valid[..valid.len() - 1].to_vec()),
        ("deep-arrays", "[".repeat(100_000).into_bytes()),
        (
            "deep-objects",
            "{\"a\":".repeat(20_000).into_bytes(), // never closed
        ),
        (
            "deep-closed",
            format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000)).into_bytes(),
        ),
        ("non-utf8", non_utf8),
        ("binary", (0..=255u8).cycle().take(4096).collect()),
        ("empty", Vec::new()),
        ("json-null", b"null".to_vec()),
        ("json-array", b"[]".to_vec()),
        ("json-string", b"\"targets\"".to_vec()),
        (
            "huge-number",
            format!(
                "{{\"signed\":{{\"_type\":\"targets\",\"version\":{}}},\"signatures\":[]}}",
                "9".repeat(10_000)
            )
            .into_bytes(),
        ),
    ]
}

#[test]
fn hostile_publish_bodies_and_multipart_framing() {
    Fixture::on_every_backend(&[], |backend, fx| {
        let valid_targets = fx.stored("targets.json");
        let path = TUF.as_bytes();
        let push = Some(fx.push.as_str());
        let mt = multipart_type();

        // Each hostile body as the content of a well-formed `targets` part,
        // and as the whole request body under several content types.
        for (label, body) in hostile_bodies(&valid_targets) {
            let wrapped = multipart(&[(&file_part("targets"), &body)], true);
            let resp = fx.request("POST", path, push, Some(&mt), &wrapped);
            let code = assert_json_4xx(&resp, &format!("publish part {label}"));
            assert!(
                ["MALFORMED_METADATA", "TOO_DEEP"].contains(&code.as_str()),
                "publish part {label}: {code}"
            );
            for ct in [
                None,
                Some("application/json"),
                Some("text/plain; charset=utf-8"),
                Some("application/x-www-form-urlencoded"),
                Some("multipart/form-data"),
                Some("multipart/form-data; boundary="),
                Some("multipart/mixed; boundary=x"),
                Some(mt.as_str()),
                Some("application/jsön; boundary=\"ä\""),
            ] {
                let resp = fx.request("POST", path, push, ct, &body);
                assert_json_4xx(&resp, &format!("publish raw {label} as {ct:?}"));
            }
            fx.assert_alive(label);
        }

        // Multipart framing.
        let targets_part = file_part("targets");
        // One part holding valid targets metadata, under hostile part headers.
        let headers: Vec<(&str, Vec<u8>)> =
            vec![
            ("stored version re-uploaded", targets_part.clone()),
            (
                "part without filename",
                b"Content-Disposition: form-data; name=\"files\"".to_vec(),
            ),
            (
                "part without content-disposition",
                b"Content-Type: application/json".to_vec(),
            ),
            ("empty filename", file_part("")),
            ("path traversal ../root", file_part("../root")),
            ("path traversal ../../targets.json", file_part("../../targets.json")),
            ("absolute filename", file_part("/etc/passwd")),
            ("nested filename", file_part("targets/../root")),
            ("backslash filename", file_part("..\\targets")),
            ("percent-encoded traversal filename", file_part("..%2Froot")),
            ("filename naming an online role", file_part("timestamp.json")),
            ("very long filename", file_part(&"r".repeat(10_000))),
            (
                "non-UTF-8 filename",
                b"Content-Disposition: form-data; name=\"files\"; filename=\"t\xff\xfe\"".to_vec(),
            ),
            (
                "NUL in filename",
                b"Content-Disposition: form-data; name=\"files\"; filename=\"targets\x00.json\""
                    .to_vec(),
            ),
            ("control character in filename", file_part("tar\u{1b}gets")),
            (
                "wrong field name",
                b"Content-Disposition: form-data; name=\"file\"; filename=\"targets\"".to_vec(),
            ),
        ];
        let mut cases: Vec<(&str, Vec<u8>)> = headers
            .iter()
            .map(|(label, part)| (*label, multipart(&[(part, &valid_targets)], true)))
            .collect();
        cases.extend([
            (
                "same role twice, same filename",
                multipart(
                    &[
                        (&targets_part, &valid_targets),
                        (&targets_part, &valid_targets),
                    ],
                    true,
                ),
            ),
            ("no parts at all", format!("--{BOUNDARY}--\r\n").into_bytes()),
            ("empty body", Vec::new()),
            (
                "part that is not JSON",
                multipart(&[(&targets_part, b"hello, world")], true),
            ),
            (
                "truncated multipart (no closing boundary)",
                multipart(&[(&targets_part, &valid_targets)], false),
            ),
            (
                "truncated multipart (cut inside a part)",
                multipart(&[(&targets_part, &valid_targets)], false)[..200].to_vec(),
            ),
            (
                "garbage between boundaries",
                format!("garbage\r\n--{BOUNDARY}\r\nnot a header line\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n")
                    .into_bytes(),
            ),
        ]);
        for (label, body) in &cases {
            let resp = fx.request("POST", path, push, Some(&mt), body);
            assert_json_4xx(&resp, label);
        }
        fx.assert_alive("multipart framing");

        // A body shorter than its Content-Length: the server must not hang
        // or fail; the client gives up (closes) and the server stays up.
        {
            let wrapped = multipart(&[(&targets_part, &valid_targets)], true);
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", fx.server.port)).unwrap();
            let head = format!(
                "POST {TUF} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: {mt}\r\nContent-Length: {}\r\n\r\n",
                fx.push,
                wrapped.len() + 1000
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&wrapped).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut response = Vec::new();
            let _ = stream
                .set_read_timeout(Some(std::time::Duration::from_secs(60)))
                .and_then(|_| stream.read_to_end(&mut response));
            if let Some(resp) = parse_response(&response) {
                assert_json_4xx(&resp, "body shorter than Content-Length");
            }
            fx.assert_alive("body shorter than Content-Length");
        }

        // Oversized: declared, and streamed chunked with no Content-Length
        // (the server must cut it off by counting, not trust a header).
        let mut huge = multipart(&[(&targets_part, &valid_targets)], false);
        huge.extend(std::iter::repeat_n(b' ', 9 * 1024 * 1024));
        let resp = fx
            .http
            .post(fx.server.tuf_url(GUN))
            .bearer_auth(&fx.push)
            .header("Content-Type", &mt)
            .body(huge.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 413);
        assert_eq!(
            resp.json::<Value>().unwrap()["errors"][0]["code"],
            "TOO_LARGE"
        );
        let streamed = fx
            .http
            .post(fx.server.tuf_url(GUN))
            .bearer_auth(&fx.push)
            .header("Content-Type", &mt)
            .body(reqwest::blocking::Body::new(std::io::Cursor::new(huge)))
            .send();
        match streamed {
            Ok(resp) => {
                assert_eq!(resp.status(), 413, "chunked oversized upload");
                assert_eq!(
                    resp.json::<Value>().unwrap()["errors"][0]["code"],
                    "TOO_LARGE"
                );
            }
            // The server may close the connection while we are still
            // sending; what matters is that it refused and stayed up.
            Err(e) => eprintln!("chunked oversized upload: connection closed early ({e})"),
        }
        fx.assert_alive("oversized uploads");

        assert_eq!(
            fx.state(GUN),
            fx.before,
            "{backend:?}: publish state changed"
        );
    });
}

/// Every other endpoint with hostile bodies, methods and content types.
#[test]
fn hostile_bodies_on_every_other_endpoint() {
    Fixture::on_every_backend(&[], |backend, fx| {
        let valid = fx.stored("root.json");
        let anonymous_reads: Vec<(String, Vec<u8>)> = [
            "root.json",
            "2.targets.json",
            "timestamp.key",
            "snapshot.key",
        ]
        .iter()
        .map(|f| (f.to_string(), fx.before[*f].clone().unwrap()))
        .chain(std::iter::once((
            format!(
                "targets.{}.json",
                tagtrust_shared::hashes::sha256_hex(fx.before["targets.json"].as_ref().unwrap())
            ),
            fx.stored("targets.json"),
        )))
        .collect();

        for (label, body) in hostile_bodies(&valid) {
            for ct in [
                None,
                Some("application/json"),
                Some(multipart_type().as_str()),
            ] {
                let what = |e: &str| format!("{e} with {label} body as {ct:?}");
                // Reads ignore a body: same answer as without one.
                for (file, expected) in &anonymous_reads {
                    let path = format!("{TUF}{file}");
                    let resp = fx.request("GET", path.as_bytes(), None, ct, &body);
                    assert_eq!(resp.status, 200, "{}", what(&path));
                    assert_eq!(&resp.body, expected, "{}", what(&path));
                }
                // Endpoints that take no body refuse one, even when allowed.
                for (method, file, token) in [
                    ("POST", "timestamp.key", fx.push.as_str()),
                    ("POST", "snapshot.key", fx.push.as_str()),
                    ("DELETE", "", fx.admin.as_str()),
                ] {
                    if body.is_empty() {
                        continue; // an empty body is an ordinary request
                    }
                    let path = format!("{TUF}{file}");
                    let resp = fx.request(method, path.as_bytes(), Some(token), ct, &body);
                    let code = assert_json_4xx(&resp, &what(&format!("{method} {file}")));
                    assert_eq!(code, "UNEXPECTED_BODY", "{}", what(method));
                }
                // Without a token, the same requests are refused for that.
                for (method, file) in [("POST", "timestamp.key"), ("DELETE", "")] {
                    let path = format!("{TUF}{file}");
                    let resp = fx.request(method, path.as_bytes(), None, ct, &body);
                    assert_eq!(resp.status, 401, "{}", what(method));
                    assert_json_4xx(&resp, &what(method));
                }
                // Creating a key for a new GUN, with a hostile body: the
                // body is ignored by design (GET), but without a token
                // nothing is created.
                let resp = fx.request(
                    "GET",
                    b"/v2/acme/new/_trust/tuf/timestamp.key",
                    None,
                    ct,
                    &body,
                );
                assert_eq!(resp.status, 401, "{}", what("GET new key"));
                // Methods a file does not support.
                for (method, file) in [
                    ("POST", "root.json"),
                    ("PUT", "root.json"),
                    ("PATCH", ""),
                    ("DELETE", "root.json"),
                    ("DELETE", "timestamp.key"),
                    ("GET", ""),
                ] {
                    let path = format!("{TUF}{file}");
                    let resp = fx.request(method, path.as_bytes(), Some(&fx.admin), ct, &body);
                    assert_json_4xx(&resp, &what(&format!("{method} {file}")));
                }
                // The registry ping: a body changes nothing.
                let resp = fx.request("GET", b"/v2/", None, ct, &body);
                assert_eq!(resp.status, 401, "{}", what("GET /v2/"));
                let resp = fx.request("GET", b"/v2/", Some(&fx.admin), ct, &body);
                assert_eq!(resp.status, 200, "{}", what("GET /v2/"));
                // Health, metrics and unknown paths.
                for path in ["/healthz", "/metrics", "/_notary_server/health"] {
                    let resp = fx.request("GET", path.as_bytes(), None, ct, &body);
                    assert_eq!(resp.status, 200, "{}", what(path));
                    let resp = fx.request("POST", path.as_bytes(), None, ct, &body);
                    assert_json_4xx(&resp, &what(&format!("POST {path}")));
                }
                for path in [
                    "/",
                    "/v2",
                    "/v1/acme/app/_trust/tuf/root.json",
                    "/v2/_trust/tuf/root.json",
                    "/v2/acme/app/_trust/tuf",
                    "/v2/acme/app/_trust/tuf/root.txt",
                    "/nothing",
                ] {
                    for method in ["GET", "POST", "DELETE"] {
                        let resp = fx.request(method, path.as_bytes(), Some(&fx.admin), ct, &body);
                        assert_json_4xx(&resp, &what(&format!("{method} {path}")));
                    }
                }
                for method in ["POST", "DELETE"] {
                    let resp = fx.request(method, b"/v2/", Some(&fx.admin), ct, &body);
                    assert_json_4xx(&resp, &what(&format!("{method} /v2/")));
                }
            }
            fx.assert_alive(label);
        }
        assert_eq!(fx.state(GUN), fx.before, "{backend:?}: state changed");
        assert_eq!(
            fx.get("acme/new", "root.json").status(),
            404,
            "nothing created for a new GUN"
        );
    });
}

/// Hostile GUNs and role names, sent as raw bytes on the request line.
#[test]
fn hostile_guns_and_role_names_over_raw_tcp() {
    Fixture::on_every_backend(&[], |backend, fx| {
        let valid = fx.stored("targets.json");
        let publish_body = multipart(&[(&file_part("targets"), &valid)], true);
        let mt = multipart_type();

        let long_segment = "a".repeat(256);
        let very_long = format!("acme/{}", "b/".repeat(5_000));
        let guns: Vec<Vec<u8>> = vec![
            b"..".to_vec(),
            b"acme/..".to_vec(),
            b"acme/../registry.example.com/acme/app".to_vec(),
            b"registry.example.com/acme/app/..".to_vec(),
            b"./registry.example.com/acme/app".to_vec(),
            b"acme%2Fapp".to_vec(),
            b"registry.example.com%2Facme%2Fapp".to_vec(),
            b"acme/%2e%2e/app".to_vec(),
            b"acme/app%00".to_vec(),
            b"acme/app%00/x".to_vec(),
            b"acme//app".to_vec(),
            b"/acme/app".to_vec(),
            b"acme/app/".to_vec(),
            b"acme/%C3%A4pp".to_vec(),
            "acme/äpp".as_bytes().to_vec(),
            "acme/ａpp".as_bytes().to_vec(),
            b"acme/\xff\xfeapp".to_vec(),
            b"acme/app%ff".to_vec(),
            b"acme/app%".to_vec(),
            b"acme/app%zz".to_vec(),
            b"acme/-app".to_vec(),
            b"acme/app;x=1".to_vec(),
            b"acme/app\\x".to_vec(),
            b"ACME/App".to_vec(),
            b"registry.example.com:99999999/acme/app".to_vec(),
            long_segment.as_bytes().to_vec(),
            very_long.as_bytes().to_vec(),
        ];
        let mut seen_protocol_level = 0;
        for gun in &guns {
            for (method, file, token, body) in [
                ("GET", "root.json", None, &b""[..]),
                ("GET", "1.root.json", None, b""),
                (
                    "GET",
                    &format!("targets.{}.json", "a".repeat(64)),
                    None,
                    b"",
                ),
                ("GET", "timestamp.key", Some(fx.push.as_str()), b""),
                ("POST", "snapshot.key", Some(fx.push.as_str()), b""),
                ("POST", "", Some(fx.push.as_str()), &publish_body),
                ("DELETE", "", Some(fx.admin.as_str()), b""),
            ] {
                let mut path = b"/v2/".to_vec();
                path.extend_from_slice(gun);
                path.extend_from_slice(b"/_trust/tuf/");
                path.extend_from_slice(file.as_bytes());
                let ct = (method == "POST" && file.is_empty()).then_some(mt.as_str());
                let resp = fx.request(method, &path, token, ct, body);
                let what = format!("{method} {}", String::from_utf8_lossy(&path));
                if assert_refused_request(&resp, &what, gun) {
                    seen_protocol_level += 1;
                } else {
                    assert_ne!(resp.status, 401, "{what}: authorised yet 401");
                }
            }
        }
        eprintln!("{backend:?}: {seen_protocol_level} requests refused by the HTTP parser");
        fx.assert_alive("hostile GUNs");

        // Role names in each file form, for reads and the key endpoints.
        let long_role = "r".repeat(300);
        let roles: Vec<Vec<u8>> = vec![
            b"..".to_vec(),
            b"%2E%2E".to_vec(),
            b"%2e%2e%2froot".to_vec(),
            b"..%2Froot".to_vec(),
            b"..%5Croot".to_vec(),
            b"root%00".to_vec(),
            b"%00".to_vec(),
            b"ro%0Aot".to_vec(),
            b"a%2Fb".to_vec(),
            b"%ff%fe".to_vec(),
            b"".to_vec(),
            b".hidden".to_vec(),
            b"%C3%A4".to_vec(),
            "röot".as_bytes().to_vec(),
            b"\xff".to_vec(),
            long_role.as_bytes().to_vec(),
        ];
        for role in &roles {
            let mut files: Vec<Vec<u8>> = Vec::new();
            for (prefix, suffix) in [
                (&b""[..], &b".json"[..]),
                (b"1.", b".json"),
                (b"99999999999999999999.", b".json"),
                (b"9223372036854775808.", b".json"),
                (b"", b".key"),
            ] {
                let mut f = prefix.to_vec();
                f.extend_from_slice(role);
                f.extend_from_slice(suffix);
                files.push(f);
            }
            let mut by_hash = role.clone();
            by_hash.extend_from_slice(format!(".{}.json", "0".repeat(64)).as_bytes());
            files.push(by_hash);
            for file in &files {
                let mut path = TUF.as_bytes().to_vec();
                path.extend_from_slice(file);
                let is_key = file.ends_with(b".key");
                let mut requests = vec![("GET", Some(fx.push.as_str()))];
                if is_key {
                    requests.push(("POST", Some(fx.push.as_str())));
                } else {
                    requests.push(("DELETE", Some(fx.admin.as_str())));
                }
                for (method, token) in requests {
                    let resp = fx.request(method, &path, token, None, b"");
                    let what = format!("{method} {}", String::from_utf8_lossy(&path));
                    assert_refused_request(&resp, &what, role);
                }
            }
        }
        fx.assert_alive("hostile role names");

        // Hostile request shapes: a very long URL, many headers, a bad
        // Content-Length, an absolute-form target. The HTTP layer may
        // refuse these before routing; they must not be 5xx or crash.
        let long_url = format!("{TUF}{}.json", "x".repeat(64 * 1024));
        for (label, head) in [
            (
                "64 KiB URL",
                format!("GET {long_url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"),
            ),
            (
                "bad Content-Length",
                format!("POST {TUF} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -5\r\n"),
            ),
            (
                "two Content-Lengths",
                format!("POST {TUF} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\nContent-Length: 2\r\n"),
            ),
            (
                "absolute-form target",
                format!("GET http://evil.example{TUF}root.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"),
            ),
            (
                "non-UTF-8 header",
                format!("GET {TUF}root.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer tt_\u{ff}\u{fe}\r\n"),
            ),
        ] {
            let resp = raw(fx.server.port, head.as_bytes(), b"");
            assert!(
                resp.status < 500,
                "{label}: {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            );
        }
        fx.assert_alive("hostile request shapes");
        assert_eq!(fx.state(GUN), fx.before, "{backend:?}: state changed");
    });
}

/// Issue 7 item 13: a publish whose body never finishes is answered 408
/// once the body timeout passes (instead of holding the connection), and
/// while it holds the only upload slot, other publishes get 503 with
/// `Retry-After`. Afterwards publishing works and nothing changed.
#[test]
fn unfinished_bodies_time_out_and_uploads_are_bounded() {
    Fixture::on_every_backend(
        &["--body-timeout-secs", "3", "--max-concurrent-uploads", "1"],
        |_, fx| {
            let mut half = std::net::TcpStream::connect(("127.0.0.1", fx.server.port)).unwrap();
            half.set_read_timeout(Some(std::time::Duration::from_secs(60)))
                .unwrap();
            let body = multipart(&[(&file_part("targets"), br#"{"signed":"#)], false);
            write!(
                half,
                "POST {TUF} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                fx.push,
                multipart_type(),
                body.len() + 1000
            )
            .unwrap();
            half.write_all(&body).unwrap();

            // While the unfinished body holds the slot: 503 with Retry-After.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let empty_publish = || {
                let mt = multipart_type();
                fx.request("POST", TUF.as_bytes(), Some(&fx.push), Some(&mt), b"")
            };
            let busy = loop {
                let resp = empty_publish();
                if resp.status == 503 {
                    break resp;
                }
                assert_json_4xx(&resp, "empty publish before the slot is taken");
                assert!(std::time::Instant::now() < deadline, "never busy");
            };
            assert_eq!(busy.header("retry-after"), Some("1"));
            let error: Value = serde_json::from_slice(&busy.body).unwrap();
            assert_eq!(error["errors"][0]["code"], "BUSY", "{error}");

            // The unfinished body: 408 with a reason, then the connection ends.
            let mut response = Vec::new();
            half.read_to_end(&mut response).unwrap();
            let resp = parse_response(&response).expect("an HTTP answer to the unfinished body");
            assert_eq!(resp.status, 408, "{}", String::from_utf8_lossy(&resp.body));
            let error: Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(error["errors"][0]["code"], "BODY_TIMEOUT", "{error}");
            fx.assert_alive("an unfinished body");
            assert_eq!(fx.state(GUN), fx.before);

            // The slot is free again: the next publish is read (and refused
            // for its empty body), not turned away.
            let resp = empty_publish();
            assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&resp.body));
        },
    );
}
