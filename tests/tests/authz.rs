//! The authorization matrix, against the real `tagtrust-server` on SQLite
//! and (with `TAGTRUST_TEST_POSTGRES_URL`) PostgreSQL: every write and
//! admin endpoint times every kind of wrong credential is refused (401 with
//! `WWW-Authenticate: Bearer` when there is no usable token, 403 when a
//! valid token lacks the scope) and changes nothing, compared over every
//! stored version; the same requests with the right token succeed (so the
//! matrix can fail). Also: `--require-pull` guards every read form; tokens
//! are stored only hashed (checked in the raw database files and in every
//! row of every table); `token revoke` takes effect on the next request.

use chrono::{Duration, Utc};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use tagtrust_shared::{Metadata, PublicKey, Root, SigningKey, Snapshot, Targets};
use tagtrust_tests::database::{contains_bytes, dump_database};
use tagtrust_tests::{bin_path, files_form, http, sign, succeeded, Backend, TestServer};

const GUN: &str = "registry.example.com/acme/app";
const NEW_GUN: &str = "registry.example.com/acme/new";

fn server_cmd(server: &TestServer) -> Command {
    let mut cmd = Command::new(bin_path("tagtrust-server"));
    cmd.args(server.storage_args()).env("RUST_LOG", "warn");
    cmd
}

/// Create a named token, returning (token, id).
fn named_token(server: &TestServer, scope: &str, name: &str) -> (String, String) {
    let out = server_cmd(server)
        .args(["token", "create", "--scope", scope, "--name", name])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let list = server_cmd(server).args(["token", "list"]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let id = list
        .lines()
        .find(|l| l.split('\t').nth(1) == Some(name))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("{name} not in {list}"))
        .to_string();
    (token, id)
}

fn revoke(server: &TestServer, id: &str) {
    let out = server_cmd(server)
        .args(["token", "revoke", id])
        .output()
        .unwrap();
    succeeded(&out);
}

/// A repository created through the API with our own root and targets keys.
struct Repo {
    server: TestServer,
    http: Client,
    targets_key: SigningKey,
}

impl Repo {
    fn new(backend: Backend, args: &[&str]) -> Repo {
        let server = TestServer::spawn_with(backend, args);
        let setup = server.create_token(&["admin:*"]);
        let http = http();
        let key = |role: &str| -> PublicKey {
            http.get(format!("{}{role}.key", server.tuf_url(GUN)))
                .bearer_auth(&setup)
                .send()
                .unwrap()
                .json()
                .unwrap()
        };
        let root_key = SigningKey::generate();
        let targets_key = SigningKey::generate();
        let mut root = Root::new(Utc::now() + Duration::days(365));
        root.add_key("root", root_key.public_key());
        root.add_key("targets", targets_key.public_key());
        root.add_key("timestamp", key("timestamp"));
        root.add_key("snapshot", key("snapshot"));
        let resp = http
            .post(server.tuf_url(GUN))
            .bearer_auth(&setup)
            .multipart(files_form(&[
                ("root", sign(root, &[&root_key])),
                (
                    "targets",
                    sign(
                        Targets::new(1, Utc::now() + Duration::days(30)),
                        &[&targets_key],
                    ),
                ),
            ]))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
        Repo {
            server,
            http,
            targets_key,
        }
    }

    fn get(&self, gun: &str, file: &str, token: Option<&str>) -> reqwest::blocking::Response {
        let mut req = self.http.get(format!("{}{file}", self.server.tuf_url(gun)));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().unwrap()
    }

    /// A targets version that a push token may publish right now.
    fn next_targets(&self) -> Vec<u8> {
        let current = self.get(GUN, "targets.json", None);
        let md = Metadata::<Targets>::from_bytes(&current.bytes().unwrap()).unwrap();
        let mut next = md.signed.clone();
        next.version += 1;
        sign(next, &[&self.targets_key])
    }

    /// Every stored version of every role (`N.{role}.json` from 1 up to
    /// the first 404), the current files and both server keys, read with
    /// `token` (a pull token, or none): reading never creates a key.
    fn state(&self, gun: &str, token: Option<&str>) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut roles = vec!["root", "targets", "snapshot", "timestamp"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        let snap = self.get(gun, "snapshot.json", token);
        if snap.status() == 200 {
            let md = Metadata::<Snapshot>::from_bytes(&snap.bytes().unwrap()).unwrap();
            roles.extend(
                md.signed
                    .meta
                    .keys()
                    .map(|k| k.trim_end_matches(".json").into()),
            );
        }
        roles.sort();
        roles.dedup();
        let mut state = BTreeMap::new();
        for role in &roles {
            let mut files = vec![format!("{role}.json")];
            for v in 1u64.. {
                assert!(v < 10_000);
                let file = format!("{v}.{role}.json");
                let resp = self.get(gun, &file, token);
                match resp.status().as_u16() {
                    200 => {
                        state.insert(file, Some(resp.bytes().unwrap().to_vec()));
                    }
                    404 => {
                        files.push(file);
                        break;
                    }
                    other => panic!("GET {file}: {other}"),
                }
            }
            for file in files {
                let resp = self.get(gun, &file, token);
                let bytes = match resp.status().as_u16() {
                    200 => Some(resp.bytes().unwrap().to_vec()),
                    404 => None,
                    other => panic!("GET {file}: {other}"),
                };
                state.insert(file, bytes);
            }
        }
        for role in ["timestamp", "snapshot"] {
            let resp = self.get(gun, &format!("{role}.key"), token);
            let bytes = match resp.status().as_u16() {
                200 => Some(resp.bytes().unwrap().to_vec()),
                // No key: creating one needs push, which readers lack.
                401 | 403 => None,
                other => panic!("GET {role}.key: {other}"),
            };
            state.insert(format!("{role}.key"), bytes);
        }
        state
    }
}

/// How a request presents (or fails to present) credentials.
#[derive(Debug, Clone)]
enum Cred {
    None,
    Header(String),
    Bearer(String),
}

impl Cred {
    fn apply(&self, req: RequestBuilder) -> RequestBuilder {
        match self {
            Cred::None => req,
            Cred::Header(value) => req.header("Authorization", value),
            Cred::Bearer(token) => req.bearer_auth(token),
        }
    }
}

/// The write and admin endpoints, each built fresh (publish bodies are
/// consumed).
fn endpoints(repo: &Repo) -> Vec<(&'static str, RequestBuilder)> {
    let url = |gun: &str, file: &str| format!("{}{file}", repo.server.tuf_url(gun));
    vec![
        (
            "publish",
            repo.http
                .post(url(GUN, ""))
                .multipart(files_form(&[("targets", repo.next_targets())])),
        ),
        (
            "rotate timestamp",
            repo.http.post(url(GUN, "timestamp.key")),
        ),
        ("rotate snapshot", repo.http.post(url(GUN, "snapshot.key"))),
        (
            "create key for a new GUN",
            repo.http.get(url(NEW_GUN, "timestamp.key")),
        ),
        (
            CHANGE_TAGS,
            repo.http
                .post(format!("{}/v2/{GUN}/_trust/tags", repo.server.url))
                .header("content-type", "application/json")
                .body(r#"{"remove":["latest"]}"#),
        ),
        (
            "create the bin key for a new GUN",
            repo.http.get(url(NEW_GUN, "bins.key")),
        ),
        ("delete", repo.http.delete(url(GUN, ""))),
    ]
}

/// The tag-change endpoint: with the right token on this repository, whose
/// bins the server does not hold, it gets as far as the repository's state
/// (409 `BINS_NOT_SERVER_HELD`); `server_bins` tests its successes.
const CHANGE_TAGS: &str = "change tags (server-held bins)";

fn assert_refused(resp: reqwest::blocking::Response, want: u16, what: &str) {
    assert_eq!(resp.status().as_u16(), want, "{what}");
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = resp.json().unwrap_or(Value::Null);
    match want {
        401 => {
            assert!(
                challenge
                    .as_deref()
                    .is_some_and(|c| c.starts_with("Bearer")),
                "{what}: 401 without a Bearer challenge"
            );
            assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{what}: {body}");
        }
        403 => {
            assert!(challenge.is_none(), "{what}: 403 with a challenge");
            assert_eq!(body["errors"][0]["code"], "DENIED", "{what}: {body}");
        }
        _ => unreachable!(),
    }
    assert!(
        !body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{what}: no reason"
    );
}

#[test]
fn every_write_endpoint_times_every_wrong_credential() {
    for backend in Backend::all() {
        let repo = Repo::new(backend, &[]);
        let server = &repo.server;
        let other = server.create_token(&["admin:registry.example.com/other/*"]);
        let pull = server.create_token(&["pull:*"]);
        let push = server.create_token(&["push:registry.example.com/acme/*"]);
        let admin = server.create_token(&["admin:registry.example.com/*"]);
        // A token that works, then is revoked: refused on the next request.
        let (revoked, id) = named_token(server, "admin:*", "revoked");
        let resp = Cred::Bearer(revoked.clone())
            .apply(
                repo.http
                    .post(format!("{}snapshot.key", server.tuf_url(GUN))),
            )
            .send()
            .unwrap();
        assert_eq!(resp.status(), 201, "the token works before revocation");
        revoke(server, &id);

        let before = repo.state(GUN, None);
        let unknown = format!("tt_{}", "0".repeat(64));
        let unauthenticated = [
            Cred::None,
            Cred::Header("garbage".into()),
            Cred::Header("Bearer".into()),
            Cred::Header("Bearer ".into()),
            Cred::Header(format!("Basic {}", "dXNlcjpwYXNz")),
            Cred::Header(format!("Token {admin}")),
            Cred::Header(format!("Bearer {admin} {admin}")),
            Cred::Bearer(format!("{admin}x")),
            Cred::Bearer(unknown),
            Cred::Bearer("x".repeat(10_000)),
            Cred::Bearer(revoked.clone()),
        ];
        let insufficient = [
            ("token for another GUN", other.as_str()),
            ("pull-only token", pull.as_str()),
        ];
        for cred in &unauthenticated {
            for (name, req) in endpoints(&repo) {
                let resp = cred.apply(req).send().unwrap();
                assert_refused(resp, 401, &format!("{name} with {cred:?}"));
            }
        }
        for (label, token) in insufficient {
            for (name, req) in endpoints(&repo) {
                let resp = Cred::Bearer(token.into()).apply(req).send().unwrap();
                assert_refused(resp, 403, &format!("{name} with {label}"));
            }
        }
        // push is not admin.
        let resp = repo
            .http
            .delete(server.tuf_url(GUN))
            .bearer_auth(&push)
            .send()
            .unwrap();
        assert_refused(resp, 403, "delete with a push token");

        assert_eq!(repo.state(GUN, None), before, "{backend:?}: state changed");
        assert_eq!(repo.get(NEW_GUN, "timestamp.key", None).status(), 401);
        assert_eq!(repo.get(NEW_GUN, "root.json", None).status(), 404);

        // The same requests with the right token succeed.
        for (name, req) in endpoints(&repo) {
            let token = if name == "delete" { &admin } else { &push };
            let resp = req.bearer_auth(token).send().unwrap();
            if name == CHANGE_TAGS {
                assert_eq!(resp.status().as_u16(), 409, "{name} with the right token");
                continue;
            }
            assert!(
                resp.status().is_success(),
                "{name} with the right token: {}",
                resp.status()
            );
        }
        assert_eq!(repo.get(NEW_GUN, "timestamp.key", None).status(), 200);
        assert_eq!(repo.get(GUN, "root.json", None).status(), 404, "deleted");
    }
}

#[test]
fn require_pull_guards_every_read_form() {
    for backend in Backend::all() {
        let repo = Repo::new(backend, &["--require-pull"]);
        let server = &repo.server;
        let pull = server.create_token(&["pull:registry.example.com/acme/*"]);
        let other = server.create_token(&["pull:other/*"]);
        let (revoked, id) = named_token(server, "pull:*", "revoked-pull");
        let targets = repo.get(GUN, "targets.json", Some(&pull)).bytes().unwrap();
        let files = [
            "root.json".to_string(),
            "1.root.json".into(),
            "timestamp.json".into(),
            "snapshot.json".into(),
            "1.targets.json".into(),
            format!(
                "targets.{}.json",
                tagtrust_shared::hashes::sha256_hex(&targets)
            ),
            "timestamp.key".into(),
            "snapshot.key".into(),
        ];
        for file in &files {
            assert_eq!(repo.get(GUN, file, Some(&revoked)).status(), 200, "{file}");
        }
        revoke(server, &id);
        let before = repo.state(GUN, Some(&pull));
        for file in &files {
            let url = format!("{}{file}", server.tuf_url(GUN));
            for cred in [
                Cred::None,
                Cred::Header("garbage".into()),
                Cred::Header("Bearer ".into()),
                Cred::Header("Basic dXNlcjpwYXNz".into()),
                Cred::Bearer(revoked.clone()),
            ] {
                let resp = cred.apply(repo.http.get(&url)).send().unwrap();
                assert_refused(resp, 401, &format!("GET {file} with {cred:?}"));
            }
            let resp = repo.http.get(&url).bearer_auth(&other).send().unwrap();
            assert_refused(resp, 403, &format!("GET {file} with another GUN's pull"));
            let resp = repo.http.get(&url).bearer_auth(&pull).send().unwrap();
            assert_eq!(resp.status(), 200, "GET {file} with pull");
        }
        // Missing files are 404 only to those allowed to read.
        let resp = repo.get(GUN, "9.root.json", None);
        assert_refused(resp, 401, "GET a missing version anonymously");
        assert_eq!(repo.get(GUN, "9.root.json", Some(&pull)).status(), 404);
        assert_eq!(repo.state(GUN, Some(&pull)), before);
    }
}

#[test]
fn tokens_are_stored_hashed_and_revocation_is_immediate() {
    for backend in Backend::all() {
        let repo = Repo::new(backend, &[]);
        let server = &repo.server;
        let mut tokens = vec![
            server.create_token(&["pull:*"]),
            server.create_token(&["push:registry.example.com/*"]),
        ];
        let (revocable, id) = named_token(server, "admin:*", "to-revoke");
        tokens.push(revocable.clone());
        // Use every token, so any request-time caching would be exercised.
        for token in &tokens {
            let resp = repo.get(GUN, "root.json", Some(token));
            assert_eq!(resp.status(), 200);
        }
        let rotate = |token: &str| {
            repo.http
                .post(format!("{}timestamp.key", server.tuf_url(GUN)))
                .bearer_auth(token)
                .send()
                .unwrap()
        };
        assert_eq!(rotate(&revocable).status(), 201);
        // Revoked by another process while the server runs: the very next
        // request fails, with no restart.
        revoke(server, &id);
        assert_refused(rotate(&revocable), 401, "rotate with a just-revoked token");
        let before = repo.state(GUN, None);
        assert_refused(rotate(&revocable), 401, "again");
        assert_eq!(repo.state(GUN, None), before);

        let dump = dump_database(server.data_dir.path(), server.database_url.as_deref());
        for token in &tokens {
            let secret = token.strip_prefix("tt_").unwrap();
            assert!(
                !contains_bytes(&dump, token.as_bytes()),
                "token stored in clear"
            );
            assert!(
                !contains_bytes(&dump, secret.as_bytes()),
                "token secret stored"
            );
            assert!(
                !contains_bytes(&dump, secret.to_uppercase().as_bytes()),
                "token secret stored (upper-case hex)"
            );
            let raw = hex_decode(secret);
            assert!(
                !contains_bytes(&dump, &raw),
                "token secret stored as raw bytes"
            );
            // What is stored is its hash: the dump is the right place.
            let hash = tagtrust_shared::hashes::sha256_hex(token.as_bytes());
            assert!(
                contains_bytes(&dump, hash.as_bytes()),
                "{backend:?}: the token's hash is not in the dump; is the dump complete?"
            );
        }
    }
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Issue 7 item 5: with reads restricted, repository names do not leak.
/// `/metrics` (which names no GUN, but counts them) needs a `metrics:*` or
/// `admin:*` token; `GET {role}.key` answers an unknown GUN exactly as it
/// answers a GUN the caller may not read (status and body).
#[test]
fn require_pull_hides_repository_names() {
    for backend in Backend::all() {
        let repo = Repo::new(backend, &["--require-pull"]);
        let server = &repo.server;
        let url = format!("{}/metrics", server.url);
        let pull_all = server.create_token(&["pull:*"]);
        let push_all = server.create_token(&["push:*"]);
        let admin_acme = server.create_token(&["admin:registry.example.com/*"]);
        let scraper = server.create_token(&["metrics:*"]);
        let admin = server.create_token(&["admin:*"]);
        let resp = repo.http.get(&url).send().unwrap();
        assert_refused(resp, 401, "GET /metrics anonymously");
        for token in [&pull_all, &push_all, &admin_acme] {
            let resp = repo.http.get(&url).bearer_auth(token).send().unwrap();
            assert_refused(resp, 403, "GET /metrics without the metrics scope");
        }
        for token in [&scraper, &admin] {
            let resp = repo.http.get(&url).bearer_auth(token).send().unwrap();
            assert_eq!(resp.status(), 200);
            let text = resp.text().unwrap();
            assert!(text.contains("tagtrust_metadata_roles"), "{text}");
            assert!(!text.contains(GUN), "metrics name no repository: {text}");
        }
        // The metrics scope reads nothing else.
        let resp = repo.get(GUN, "root.json", Some(&scraper));
        assert_refused(resp, 403, "GET root.json with metrics:*");

        let other = server.create_token(&["pull:other/*"]);
        let unknown = "registry.example.com/acme/does-not-exist";
        for role in ["timestamp", "snapshot"] {
            let file = format!("{role}.key");
            for token in [None, Some(other.as_str())] {
                let answer = |gun: &str| {
                    let resp = repo.get(gun, &file, token);
                    (resp.status().as_u16(), resp.text().unwrap())
                };
                let (existing, missing) = (answer(GUN), answer(unknown));
                assert!(existing.0 == 401 || existing.0 == 403, "{existing:?}");
                assert_eq!(
                    existing.1.replace(GUN, "GUN"),
                    missing.1.replace(unknown, "GUN"),
                    "{file} with {token:?}"
                );
                assert_eq!(existing.0, missing.0, "{file} with {token:?}");
            }
        }
    }
    // Without --require-pull, metrics stay open (reads are public anyway).
    let open = TestServer::spawn(Backend::Sqlite);
    let resp = http().get(format!("{}/metrics", open.url)).send().unwrap();
    assert_eq!(resp.status(), 200);
}
