//! Notary v1 clients unchanged (issue 11): the real `notary` CLI (Debian's
//! 0.7) publishes a Notary-dialect repository to tagtrust-server through the
//! registry token flow, and a second trust directory reads it: init, add,
//! addhash, publish, list, lookup, verify, remove, witness, the server
//! taking over the snapshot key (`key rotate GUN snapshot -r`) and a new
//! timestamp key (`key rotate GUN timestamp -r`), delegations to x509
//! certificates with a delegate publishing from its own trust directory,
//! root key rotation followed by a consumer, the scheduler re-signing; a
//! publish with a read-only token and hostile uploads (either dialect sent
//! to the other's repository, an old version, a broken signature) are
//! refused and change nothing. On SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use tagtrust_tests::notary::{self_signed_certificate, Notary};
use tagtrust_tests::{files_form, http, random_digest, Backend, Cli, TestServer, SHORT_EXPIRY};

const GUN: &str = "example.com/acme/app";

/// The current `role` of `GUN` as the server serves it, parsed.
fn current(server: &TestServer, role: &str) -> Value {
    let response = http()
        .get(format!("{}{role}.json", server.tuf_url(GUN)))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {role}.json");
    serde_json::from_slice(&response.bytes().unwrap()).unwrap()
}

/// The key IDs that signed a served file.
fn signers(file: &Value) -> Vec<String> {
    file["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_string())
        .collect()
}

/// The key IDs root lists for `role`.
fn root_keyids(root: &Value, role: &str) -> Vec<String> {
    root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

fn names(rows: &[(String, String, u64, String)]) -> Vec<&str> {
    rows.iter().map(|(name, ..)| name.as_str()).collect()
}

/// A server with push, pull and admin tokens for `example.com/*`, a
/// publisher (its trust directory also used with the admin token as
/// `owner`: key rotations ask the realm for `*`, as with notary-server), a
/// consumer with the pull token, and a manifest file.
struct Fixture {
    server: TestServer,
    push: String,
    pull: String,
    publisher: Notary,
    owner: Notary,
    consumer: Notary,
    work: tempfile::TempDir,
    manifest: String,
    manifest_hex: String,
}

impl Fixture {
    fn new(backend: Backend, args: &[&str]) -> Fixture {
        let server = TestServer::spawn_with(backend, args);
        let push = server.create_token(&["push:example.com/*"]);
        let pull = server.create_token(&["pull:example.com/*"]);
        let admin = server.create_token(&["admin:example.com/*"]);
        let publisher = Notary::new(&server.url, &push);
        let owner = publisher.with_password(&admin);
        let consumer = Notary::new(&server.url, &pull);
        let work = tempfile::tempdir().unwrap();
        let (manifest, manifest_hex) = manifest(work.path());
        Fixture {
            server,
            push,
            pull,
            publisher,
            owner,
            consumer,
            work,
            manifest,
            manifest_hex,
        }
    }

    /// `notary init`, `add v1` and `publish`.
    fn published(backend: Backend, args: &[&str]) -> Fixture {
        let fx = Fixture::new(backend, args);
        fx.publisher.ok(&["init", GUN]);
        fx.publisher.ok(&["add", GUN, "v1", &fx.manifest]);
        fx.publisher.ok(&["publish", GUN]);
        fx
    }
}

#[test]
fn the_notary_cli_publishes_and_a_second_trust_directory_reads_it() {
    for backend in Backend::all() {
        let fx = Fixture::new(backend, &[]);
        let Fixture {
            server,
            pull,
            publisher,
            owner,
            consumer,
            ..
        } = &fx;
        let (manifest, manifest_hex) = (fx.manifest.as_str(), fx.manifest_hex.as_str());
        let (digest, size) = random_digest();
        let latest_hex = digest.strip_prefix("sha256:").unwrap();

        publisher.ok(&["init", GUN]);
        publisher.ok(&["add", GUN, "v1", manifest]);
        publisher.ok(&[
            "addhash",
            GUN,
            "latest",
            &size.to_string(),
            "--sha256",
            latest_hex,
        ]);
        publisher.ok(&["publish", GUN]);

        // Stored in Notary's dialect, the timestamp made by the server.
        let root = current(server, "root");
        assert_eq!(root["signed"]["_type"], "Root");
        let timestamp = current(server, "timestamp");
        assert_eq!(timestamp["signed"]["_type"], "Timestamp");
        assert_eq!(signers(&timestamp), root_keyids(&root, "timestamp"));
        // ECDSA P-256 by default, as notary-signer's keys are.
        assert_eq!(timestamp["signatures"][0]["method"], "ecdsa");
        let key_id = &root_keyids(&root, "timestamp")[0];
        assert_eq!(root["signed"]["keys"][key_id]["keytype"], "ecdsa");

        // A second trust directory, trusting on first use, reads both tags.
        let rows = consumer.list(GUN);
        assert_eq!(names(&rows), ["latest", "v1"], "{rows:?}");
        assert_eq!(rows[0].1, latest_hex);
        assert_eq!(rows[0].2, size);
        assert_eq!(rows[1].1, manifest_hex);
        let looked_up = consumer.ok(&["lookup", GUN, "v1"]);
        assert!(looked_up.contains(manifest_hex), "{looked_up}");
        consumer.ok(&["verify", GUN, "v1", "-i", manifest, "-q"]);

        // Remove a tag; witness targets (re-signed with nothing changed).
        publisher.ok(&["remove", GUN, "v1"]);
        publisher.ok(&["publish", GUN]);
        assert_eq!(names(&consumer.list(GUN)), ["latest"]);
        let targets_version = current(server, "targets")["signed"]["version"].clone();
        publisher.ok(&["witness", GUN, "targets"]);
        publisher.ok(&["publish", GUN]);
        assert_eq!(
            current(server, "targets")["signed"]["version"],
            targets_version.as_u64().unwrap() + 1
        );
        assert_eq!(names(&consumer.list(GUN)), ["latest"]);

        // The server takes over the snapshot: later publishes carry none.
        owner.ok(&["key", "rotate", GUN, "snapshot", "-r"]);
        let root = current(server, "root");
        assert_eq!(root["signed"]["version"], 2);
        publisher.ok(&["add", GUN, "v2", manifest]);
        publisher.ok(&["publish", GUN]);
        let snapshot = current(server, "snapshot");
        assert_eq!(signers(&snapshot), root_keyids(&root, "snapshot"));
        assert_eq!(names(&consumer.list(GUN)), ["latest", "v2"]);

        // A new timestamp key: the consumer follows the new root.
        let old_timestamp_keys = root_keyids(&root, "timestamp");
        owner.ok(&["key", "rotate", GUN, "timestamp", "-r"]);
        let root = current(server, "root");
        assert_eq!(root["signed"]["version"], 3);
        let new_timestamp_keys = root_keyids(&root, "timestamp");
        assert_ne!(new_timestamp_keys, old_timestamp_keys);
        assert_eq!(signers(&current(server, "timestamp")), new_timestamp_keys);
        assert_eq!(names(&consumer.list(GUN)), ["latest", "v2"]);

        // A publish with a read-only token is refused and changes nothing.
        let before = current(server, "timestamp");
        let reader = publisher.with_password(pull);
        reader.ok(&["add", GUN, "v3", manifest]);
        reader.fails(&["publish", GUN]);
        assert_eq!(current(server, "timestamp"), before);
        assert_eq!(names(&consumer.list(GUN)), ["latest", "v2"]);

        // The changefeed, in Notary's shape: one update per timestamp
        // version, each naming that timestamp's sha256; `delete --remote`
        // adds a deletion, and the GUN can start again in either dialect.
        let feed = |query: &str| -> Value {
            let url = format!("{}/v2/{GUN}/_trust/changefeed?{query}", server.url);
            let response = http().get(url).bearer_auth(pull).send().unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json().unwrap()
        };
        let timestamp = current(server, "timestamp");
        let latest = timestamp["signed"]["version"].as_u64().unwrap();
        let all = feed("change_id=0&records=100");
        let records = all["records"].as_array().unwrap();
        assert_eq!(all["count"], records.len());
        let versions: Vec<u64> = records
            .iter()
            .map(|r| r["Version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, (1..=latest).collect::<Vec<_>>());
        assert!(records
            .iter()
            .all(|r| r["GUN"] == GUN && r["Category"] == "update"));
        let last = feed("change_id=-1&records=-1");
        assert_eq!(last["records"][0]["Version"], latest);
        let bytes = http()
            .get(format!("{}timestamp.json", server.tuf_url(GUN)))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(
            last["records"][0]["SHA256"],
            hex::encode(Sha256::digest(&bytes))
        );
        owner.ok(&["delete", GUN, "--remote"]);
        let after = feed(&format!(
            "change_id={}&records=10",
            last["records"][0]["ID"].as_str().unwrap()
        ));
        assert_eq!(after["records"][0]["Category"], "deletion");
        assert_eq!(after["count"], 1);
        let said = Notary::new(&server.url, pull).fails(&["list", GUN]);
        assert!(said.contains("does not have trust data"), "{said}");
        Cli::new(&server.url)
            .with_token(&fx.push)
            .ok(&["init", GUN]);
    }
}

/// A manifest file in `dir` and its hex sha256.
fn manifest(dir: &Path) -> (String, String) {
    let bytes = b"{\"schemaVersion\":2,\"layers\":[]}\n";
    let path = dir.join("manifest.json");
    std::fs::write(&path, bytes).unwrap();
    (
        path.to_str().unwrap().to_string(),
        hex::encode(Sha256::digest(bytes)),
    )
}

#[test]
fn a_delegate_publishes_with_its_own_key_and_consumers_follow_a_root_rotation() {
    for backend in Backend::all() {
        let fx = Fixture::published(backend, &[]);
        let Fixture {
            server,
            push,
            pull,
            publisher,
            owner,
            consumer,
            work,
            ..
        } = &fx;
        let (manifest, manifest_hex) = (&fx.manifest, &fx.manifest_hex);
        let delegate = Notary::new(&server.url, push);
        let (key, cert) = self_signed_certificate(work.path(), "ci-bot");
        let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());

        // The delegate signs no snapshot: the server takes it over.
        owner.ok(&["key", "rotate", GUN, "snapshot", "-r"]);
        assert_eq!(names(&consumer.list(GUN)), ["v1"]);

        let releases = "targets/releases";
        publisher.ok(&[
            "delegation",
            "add",
            GUN,
            releases,
            cert,
            "--paths",
            "releases/",
            "-p",
        ]);
        let listed = publisher.ok(&["delegation", "list", GUN]);
        assert!(
            listed.contains(releases) && listed.contains("releases/"),
            "{listed}"
        );
        delegate.ok(&["key", "import", key, "--role", releases, "--gun", GUN]);
        delegate.ok(&["add", GUN, "releases/1.0", manifest, "--roles", releases]);
        delegate.ok(&["publish", GUN]);
        let rows = consumer.list(GUN);
        assert_eq!(names(&rows), ["releases/1.0", "v1"], "{rows:?}");
        assert_eq!(
            (rows[0].1.as_str(), rows[0].3.as_str()),
            (manifest_hex.as_str(), releases)
        );
        // Served under its name, slash and all, and by checksum.
        let delegated = http()
            .get(format!("{}{releases}.json", server.tuf_url(GUN)))
            .send()
            .unwrap();
        assert_eq!(delegated.status(), StatusCode::OK);
        let delegated = delegated.bytes().unwrap();
        let by_hash = http()
            .get(format!(
                "{}{releases}.{}.json",
                server.tuf_url(GUN),
                hex::encode(Sha256::digest(&delegated))
            ))
            .send()
            .unwrap();
        assert_eq!(by_hash.bytes().unwrap(), delegated);

        // A tag outside the delegated paths: the CLI itself refuses to
        // publish it (the server's own check is `publish::notary`'s), and
        // nothing changes.
        delegate.ok(&["add", GUN, "elsewhere/1.0", manifest, "--roles", releases]);
        delegate.fails(&["publish", GUN]);
        delegate.ok(&["reset", GUN, "--all"]);
        assert_eq!(names(&consumer.list(GUN)), ["releases/1.0", "v1"]);

        // A new root key, signed by the old one too: the consumer follows.
        let before = current(server, "root");
        owner.ok_with_input(&["key", "rotate", GUN, "root"], "yes\n");
        let after = current(server, "root");
        assert_eq!(
            after["signed"]["version"],
            before["signed"]["version"].as_u64().unwrap() + 1
        );
        assert_ne!(root_keyids(&after, "root"), root_keyids(&before, "root"));
        assert_eq!(names(&consumer.list(GUN)), ["releases/1.0", "v1"]);
        // And a consumer that only ever saw the new root.
        let newcomer = Notary::new(&server.url, pull);
        assert_eq!(names(&newcomer.list(GUN)), ["releases/1.0", "v1"]);

        // Removing the delegation drops its tags.
        publisher.ok_with_input(&["delegation", "remove", GUN, releases, "-p"], "yes\n");
        assert_eq!(names(&consumer.list(GUN)), ["v1"]);
    }
}

/// POST `files` to `gun` with `token`: the status and the error code.
fn upload(
    server: &TestServer,
    gun: &str,
    token: &str,
    files: &[(&str, Vec<u8>)],
) -> (StatusCode, String) {
    let response = http()
        .post(server.tuf_url(gun))
        .bearer_auth(token)
        .multipart(files_form(files))
        .send()
        .unwrap();
    let status = response.status();
    let body: Value = response.json().unwrap_or_default();
    (
        status,
        body["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn hostile_uploads_to_a_notary_repository_are_refused_and_change_nothing() {
    for backend in Backend::all() {
        let fx = Fixture::published(backend, &[]);
        let (server, push) = (&fx.server, &fx.push);
        let tuf_gun = "example.com/acme/tuf";
        Cli::new(&server.url)
            .with_token(push)
            .ok(&["init", tuf_gun]);
        let state = |gun: &str| -> Vec<u8> {
            http()
                .get(format!("{}timestamp.json", server.tuf_url(gun)))
                .send()
                .unwrap()
                .bytes()
                .unwrap()
                .to_vec()
        };
        let file = |gun: &str, role: &str| -> Vec<u8> {
            http()
                .get(format!("{}{role}.json", server.tuf_url(gun)))
                .send()
                .unwrap()
                .bytes()
                .unwrap()
                .to_vec()
        };
        let (notary_before, tuf_before) = (state(GUN), state(tuf_gun));
        let notary_targets = file(GUN, "targets");
        let tuf_targets = file(tuf_gun, "targets");
        let bump = |bytes: &[u8]| -> Vec<u8> {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let version = parsed["signed"]["version"].as_u64().unwrap();
            text.replace(
                &format!("\"version\":{version}"),
                &format!("\"version\":{}", version + 1),
            )
            .into_bytes()
        };

        for (gun, files, expected) in [
            // Each dialect to the other's repository.
            (
                tuf_gun,
                vec![("targets", notary_targets.clone())],
                (StatusCode::BAD_REQUEST, "WRONG_DIALECT"),
            ),
            (
                GUN,
                vec![("targets", tuf_targets.clone())],
                (StatusCode::BAD_REQUEST, "WRONG_DIALECT"),
            ),
            // The stored version again; a new version its signature does not cover.
            (
                GUN,
                vec![("targets", notary_targets.clone())],
                (StatusCode::BAD_REQUEST, "VERSION"),
            ),
            (
                GUN,
                vec![("targets", bump(&notary_targets))],
                (StatusCode::BAD_REQUEST, "SIGNATURE"),
            ),
            // A name Notary has no role for.
            (
                GUN,
                vec![("releases", notary_targets.clone())],
                (StatusCode::BAD_REQUEST, "INVALID_ROLE"),
            ),
        ] {
            let (status, code) = upload(server, gun, push, &files);
            assert_eq!((status, code.as_str()), expected, "{gun} {:?}", files[0].0);
        }
        // Refusals carry Notary's typed error, which the notary CLI prints.
        let response = http()
            .post(server.tuf_url(GUN))
            .bearer_auth(push)
            .multipart(files_form(&[("targets", bump(&notary_targets))]))
            .send()
            .unwrap();
        let body: Value = response.json().unwrap();
        assert_eq!(
            body["errors"][0]["detail"]["Name"], "ErrBadTargets",
            "{body}"
        );
        assert!(
            body["errors"][0]["detail"]["Error"]["Msg"].is_string(),
            "{body}"
        );

        // A Notary repository has no server-held bins to change tags in.
        let response = http()
            .post(format!("{}/v2/{GUN}/_trust/tags", server.url))
            .bearer_auth(push)
            .json(&serde_json::json!({"remove": ["v1"]}))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().unwrap();
        assert_eq!(body["errors"][0]["code"], "WRONG_DIALECT");
        assert_eq!(state(GUN), notary_before);
        assert_eq!(state(tuf_gun), tuf_before);
        assert_eq!(file(GUN, "targets"), notary_targets);
    }
}

#[test]
fn the_scheduler_re_signs_a_notary_timestamp_in_notarys_format() {
    for backend in Backend::all() {
        // The other online key type Notary clients take.
        let args = [&SHORT_EXPIRY[..], &["--notary-key-type", "ed25519"]].concat();
        let fx = Fixture::published(backend, &args);
        let server = &fx.server;
        let first = current(server, "timestamp")["signed"]["version"]
            .as_u64()
            .unwrap();
        let next = format!("{}{}.timestamp.json", server.tuf_url(GUN), first + 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while http().get(&next).send().unwrap().status() != StatusCode::OK {
            assert!(
                std::time::Instant::now() < deadline,
                "the scheduler never re-signed twice"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let timestamp = current(server, "timestamp");
        assert_eq!(timestamp["signed"]["_type"], "Timestamp");
        assert_eq!(timestamp["signatures"][0]["method"], "eddsa");
        assert_eq!(names(&fx.consumer.list(GUN)), ["v1"]);
    }
}
