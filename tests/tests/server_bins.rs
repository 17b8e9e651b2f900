//! Hashed bins whose key the server holds (issue 10): `init --bins N
//! --bin-keys server` and `bins enable --bin-keys server` delegate the bins
//! to the server's `bins.key`, the server creates every bin, and a tag
//! change is authorised by a `push:` token alone (`POST /_trust/tags`, which
//! `tag set` / `tag rm` / `tag set --from-file` use when this home holds no
//! bin key). Real server processes on SQLite and PostgreSQL, the real CLI,
//! python-tuf's ngclient.

use serde_json::{json as value, Value};
use std::collections::BTreeMap;
use tagtrust_tests::{
    http, json, ngclient_lookup, parse_json, python_with_tuf, random_digest, snapshot_versions,
    Backend, Cli, TestServer,
};

const GUN: &str = "localhost:5000/sbins/app";

fn version_of(server: &TestServer, gun: &str, role: &str) -> u64 {
    parse_json(&server.fetch(gun, &format!("{role}.json")))["signed"]["version"]
        .as_u64()
        .unwrap()
}

/// The files whose version differs between two snapshots.
fn changed(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<String> {
    after
        .keys()
        .filter(|f| before.get(*f) != after.get(*f))
        .cloned()
        .collect()
}

/// The CLI's failure: notices (a first-use notice in a new home) and then
/// exactly one error line.
fn assert_one_error_line(stderr: &str) {
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("tagtrust: error")),
        "{stderr}"
    );
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("notice: ")),
        "{stderr}"
    );
}

/// `POST /v2/{gun}/_trust/tags` with `body` and `token`: (status, answer).
fn post_tags(server: &TestServer, gun: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = http()
        .post(format!("{}/v2/{gun}/_trust/tags", server.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn set_body(tag: &str, digest: &str, size: u64) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap();
    value!({ "set": { tag: { "length": size, "hashes": { "sha256": hex } } } }).to_string()
}

/// A publisher whose `init --bins 16 --bin-keys server` made GUN, and a CI
/// robot with a `push:` token for GUN and nothing else (no key, no trust
/// yet): its home is new.
fn server_binned(server: &TestServer) -> (Cli, Cli, String) {
    let token = server.create_token(&["push:localhost:5000/sbins/*"]);
    let publisher = Cli::new(&server.url).with_token(&token);
    let init = json(&publisher.ok(&[
        "init",
        GUN,
        "--bins",
        "16",
        "--bin-keys",
        "server",
        "-o",
        "json",
    ]));
    assert_eq!(init["bins"]["bin_keys"], "server", "{init}");
    let robot_token = server.create_token(&[&format!("push:{GUN}")]);
    let robot = Cli::new(&server.url).with_token(&robot_token);
    (publisher, robot, robot_token)
}

#[test]
fn a_push_token_alone_changes_tags_in_server_held_bins() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let (publisher, robot, _) = server_binned(&server);
        let versions = snapshot_versions(&server, GUN);
        let bins = versions.keys().filter(|f| f.starts_with("bins-")).count();
        assert_eq!(bins, 16, "every bin exists: {versions:?}");
        // The bins are signed by the server's bin key, the one the
        // publisher's targets delegates to.
        let key: Value = http()
            .get(format!("{}bins.key", server.tuf_url(GUN)))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let targets = parse_json(&server.fetch(GUN, "targets.json"));
        let delegated = &targets["signed"]["delegations"];
        let key_id = delegated["succinct_roles"]["keyids"][0].as_str().unwrap();
        assert_eq!(delegated["keys"][key_id], key, "{targets}");
        let targets_version = version_of(&server, GUN, "targets");

        // The robot tags with no key at all.
        let before = snapshot_versions(&server, GUN);
        let digest = robot.tag_set(GUN, "1.0");
        let after = snapshot_versions(&server, GUN);
        let touched = changed(&before, &after);
        assert_eq!(touched.len(), 1, "exactly one bin: {touched:?}");
        assert!(touched[0].starts_with("bins-"), "{touched:?}");
        assert_eq!(version_of(&server, GUN, "targets"), targets_version);
        let keys_dir = robot.home.path().join("keys");
        assert!(
            !keys_dir.exists() || std::fs::read_dir(&keys_dir).unwrap().next().is_none(),
            "the robot holds no key"
        );

        let consumer = Cli::new(&server.url);
        assert_eq!(consumer.lookup(GUN, "1.0"), digest);
        if let Some(python) = python_with_tuf() {
            let root = publisher.trusted_dir(&server, GUN).join("root.json");
            let theirs =
                ngclient_lookup(&python, &server.tuf_url(GUN), &root, "1.0", "server bins");
            assert_eq!(
                format!("sha256:{}", theirs["sha256"].as_str().unwrap()),
                digest
            );
        }

        // Many tags in one request: one version of each touched bin.
        let dir = tempfile::tempdir().unwrap();
        let mut lines = String::new();
        let mut digests = BTreeMap::new();
        for tag in ["1", "1.5", "1.5.1", "latest"] {
            let (digest, size) = random_digest();
            lines.push_str(&format!("{tag} {digest} {size}\n"));
            digests.insert(tag, digest);
        }
        let list = dir.path().join("tags.txt");
        std::fs::write(&list, lines).unwrap();
        let before = snapshot_versions(&server, GUN);
        let report = json(&robot.ok(&[
            "tag",
            "set",
            GUN,
            "--from-file",
            list.to_str().unwrap(),
            "-o",
            "json",
        ]));
        assert_eq!(report["tags"], 4, "{report}");
        let after = snapshot_versions(&server, GUN);
        let roles: Vec<String> = report["roles"]
            .as_object()
            .unwrap()
            .keys()
            .map(|r| format!("{r}.json"))
            .collect();
        assert_eq!(changed(&before, &after), roles, "{report}");
        for (tag, digest) in &digests {
            assert_eq!(&consumer.lookup(GUN, tag), digest);
        }
        // A removal, and the publisher (who holds no bin key either) too.
        robot.ok(&["tag", "rm", &format!("{GUN}:1.5")]);
        assert!(consumer
            .fails(&["lookup", &format!("{GUN}:1.5")])
            .contains("1.5"));
        let moved = publisher.tag_set(GUN, "1.0");
        assert_eq!(consumer.lookup(GUN, "1.0"), moved);
        // Removing what is not there: one line, non-zero.
        let stderr = robot.fails(&["tag", "rm", &format!("{GUN}:never")]);
        assert_one_error_line(&stderr);
        assert!(stderr.contains("never"), "{stderr}");
    }
}

#[test]
fn tokens_that_may_not_push_change_nothing() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let (_publisher, robot, _) = server_binned(&server);
        robot.tag_set(GUN, "latest");
        let before = snapshot_versions(&server, GUN);
        let timestamp = version_of(&server, GUN, "timestamp");
        let (digest, size) = random_digest();
        let body = set_body("latest", &digest, size);
        let pull = server.create_token(&[&format!("pull:{GUN}")]);
        let elsewhere = server.create_token(&["push:localhost:5000/other/*"]);
        for (token, expected) in [
            (None, 401),
            (Some("not-a-token"), 401),
            (Some(pull.as_str()), 403),
            (Some(elsewhere.as_str()), 403),
        ] {
            let (status, answer) = post_tags(&server, GUN, token, &body);
            assert_eq!(status, expected, "{token:?}: {answer}");
        }
        // Through the CLI: one line, non-zero.
        let puller = Cli::new(&server.url).with_token(&pull);
        let (out, _) = puller.tag_set_with(GUN, "latest", &[]);
        assert!(!out.status.success());
        assert_one_error_line(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(snapshot_versions(&server, GUN), before);
        assert_eq!(version_of(&server, GUN, "timestamp"), timestamp);
        assert_ne!(Cli::new(&server.url).lookup(GUN, "latest"), digest);
    }
}

#[test]
fn bins_enable_with_server_keys_keeps_every_tag() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let (publisher, token) = Cli::publisher(&server, "push:*", GUN);
        let tags: Vec<(String, String)> = (0..12)
            .map(|n| (format!("t{n}"), publisher.tag_set(GUN, &format!("t{n}"))))
            .collect();
        let targets_before = version_of(&server, GUN, "targets");
        let report = json(&publisher.ok(&[
            "bins",
            "enable",
            GUN,
            "--bins",
            "8",
            "--bin-keys",
            "server",
            "-o",
            "json",
        ]));
        assert_eq!(report["tags_moved"], 12, "{report}");
        assert_eq!(report["bin_keys"], "server", "{report}");
        assert_eq!(report["targets_version"], targets_before + 1);
        let targets = parse_json(&server.fetch(GUN, "targets.json"));
        assert_eq!(targets["signed"]["targets"], value!({}), "{targets}");
        let versions = snapshot_versions(&server, GUN);
        assert_eq!(
            versions.keys().filter(|f| f.starts_with("bins-")).count(),
            8
        );
        let consumer = Cli::new(&server.url);
        for (tag, digest) in &tags {
            assert_eq!(&consumer.lookup(GUN, tag), digest);
        }
        // A robot with a push token moves one of them.
        let robot = Cli::new(&server.url).with_token(&token);
        let moved = robot.tag_set(GUN, "t3");
        assert_eq!(consumer.lookup(GUN, "t3"), moved);
        // Enabling again is refused, and the server's bin key is not rotated.
        let stderr =
            publisher.fails(&["bins", "enable", GUN, "--bins", "8", "--bin-keys", "server"]);
        assert!(stderr.contains("already has hashed bins"), "{stderr}");
        let rotated = http()
            .post(format!("{}bins.key", server.tuf_url(GUN)))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(rotated.status().as_u16(), 409);
        let answer: Value = rotated.json().unwrap();
        assert_eq!(answer["errors"][0]["code"], "BINS_KEY_ROTATION", "{answer}");
    }
}

/// The error code of a refusal.
fn code(answer: &Value) -> &str {
    answer["errors"][0]["code"].as_str().unwrap_or_default()
}

#[test]
fn hostile_tag_changes_are_refused_and_change_nothing() {
    for backend in Backend::all() {
        let server = TestServer::spawn_with(backend, &["--max-tag-changes", "3"]);
        let (publisher, token) = Cli::publisher(&server, "push:*", GUN);
        // A delegation listed before the bins takes 1.*.
        let robot = Cli::new(&server.url).with_token(&token);
        let release_key = publisher.delegate_to(&robot, GUN, "release", "1.*");
        robot.tag_set_as(GUN, "1.0", "release", &release_key);
        publisher.ok(&[
            "bins",
            "enable",
            GUN,
            "--bins",
            "4",
            "--bin-form",
            "path-hash-prefixes",
            "--bin-keys",
            "server",
        ]);
        let good = random_digest();
        let (status, answer) =
            post_tags(&server, GUN, Some(&token), &set_body("ok", &good.0, good.1));
        assert_eq!(status, 200, "{answer}");
        assert!(answer["versions"]["timestamp"].is_u64(), "{answer}");
        let before = snapshot_versions(&server, GUN);
        let timestamp = version_of(&server, GUN, "timestamp");

        let hex = good.0.strip_prefix("sha256:").unwrap();
        let entry = |length: Value, hashes: Value| value!({ "length": length, "hashes": hashes });
        let many: serde_json::Map<String, Value> = (0..4)
            .map(|n| (format!("m{n}"), entry(value!(1), value!({ "sha256": hex }))))
            .collect();
        for (body, status, expected) in [
            (
                value!({ "set": { "x": entry(value!(1), value!({ "sha256": "AB".repeat(32) })) } }),
                400,
                "INVALID_TARGET",
            ),
            (
                value!({ "set": { "x": entry(value!(1), value!({ "sha256": "ab" })) } }),
                400,
                "INVALID_TARGET",
            ),
            (
                value!({ "set": { "x": entry(value!(0), value!({ "sha256": hex })) } }),
                400,
                "INVALID_TARGET",
            ),
            (
                value!({ "set": { "x": entry(value!(-1), value!({ "sha256": hex })) } }),
                400,
                "BAD_JSON",
            ),
            (
                value!({ "set": { "a/b": entry(value!(1), value!({ "sha256": hex })) } }),
                400,
                "INVALID_TARGET_NAME",
            ),
            (
                value!({ "set": { "1.5": entry(value!(1), value!({ "sha256": hex })) } }),
                400,
                "TAG_CLAIMED",
            ),
            (value!({ "set": many }), 400, "TOO_MANY_CHANGES"),
            (value!({ "remove": ["never"] }), 400, "UNKNOWN_TAG"),
            (value!({ "remove": ["ok", "ok"] }), 400, "DUPLICATE_TAG"),
            (value!({}), 400, "NO_CHANGES"),
            (value!({ "sett": {} }), 400, "BAD_JSON"),
        ] {
            let (got, answer) = post_tags(&server, GUN, Some(&token), &body.to_string());
            assert_eq!((got, code(&answer)), (status, expected), "{body}: {answer}");
        }
        let (got, answer) = post_tags(&server, GUN, Some(&token), "{not json");
        assert_eq!((got, code(&answer)), (400, "BAD_JSON"), "{answer}");
        assert_eq!(snapshot_versions(&server, GUN), before);
        assert_eq!(version_of(&server, GUN, "timestamp"), timestamp);
        let consumer = Cli::new(&server.url);
        assert_eq!(consumer.lookup(GUN, "ok"), good.0);
        // 1.0 still resolves, through its delegation listed before the bins.
        consumer.lookup(GUN, "1.0");

        // A GUN whose bins the publisher holds locally: a conflict.
        let local = "localhost:5000/sbins/local";
        publisher.ok(&["init", local, "--bins", "4"]);
        let timestamp = version_of(&server, local, "timestamp");
        let (status, answer) = post_tags(
            &server,
            local,
            Some(&token),
            &set_body("x", &good.0, good.1),
        );
        assert_eq!(
            (status, code(&answer)),
            (409, "BINS_NOT_SERVER_HELD"),
            "{answer}"
        );
        assert_eq!(version_of(&server, local, "timestamp"), timestamp);
        // And a robot without the local bin key is told so in one line.
        let stderr = Cli::new(&server.url).with_token(&token).fails(&[
            "tag",
            "set",
            &format!("{local}:x"),
            &good.0,
            "--size",
            &good.1.to_string(),
        ]);
        assert_one_error_line(&stderr);
        assert!(stderr.contains("not held by the server"), "{stderr}");
        // A bin the server signs cannot be uploaded as signed metadata.
        let bin = parse_json(&server.fetch(GUN, "bins-0.json"));
        let form = tagtrust_tests::files_form(&[("bins-0", serde_json::to_vec(&bin).unwrap())]);
        let resp = http()
            .post(server.tuf_url(GUN))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
}

#[test]
fn the_scheduler_re_signs_server_held_bins_before_they_expire() {
    for backend in Backend::all() {
        // Bins live 8 s (re-signed with 4 s left), passes every second.
        let server = TestServer::spawn_with(
            backend,
            &["--bins-expiry-secs", "8", "--resign-interval-secs", "1"],
        );
        let (_publisher, robot, _) = server_binned(&server);
        let digest = robot.tag_set(GUN, "latest");
        let bins: Vec<String> = snapshot_versions(&server, GUN)
            .into_keys()
            .filter(|f| f.starts_with("bins-"))
            .map(|f| f.trim_end_matches(".json").to_string())
            .collect();
        let first: BTreeMap<&String, u64> = bins
            .iter()
            .map(|b| (b, version_of(&server, GUN, b)))
            .collect();
        // Within the first bins' lifetime (wait_for's 5 s is too short).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(12);
        while !bins.iter().all(|b| version_of(&server, GUN, b) > first[b]) {
            assert!(
                std::time::Instant::now() < deadline,
                "every server-held bin re-signed"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // Past the first bins' expiry, consumers still resolve the tag.
        std::thread::sleep(std::time::Duration::from_secs(5));
        assert_eq!(Cli::new(&server.url).lookup(GUN, "latest"), digest);
        let bin = parse_json(&server.fetch(GUN, &format!("{}.json", bins[0])));
        let expires =
            chrono::DateTime::parse_from_rfc3339(bin["signed"]["expires"].as_str().unwrap())
                .unwrap();
        assert!(expires > chrono::Utc::now(), "{bin}");
    }
}

#[test]
fn tag_changes_and_signed_publishes_racing_lose_nothing() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let (publisher, _robot, robot_token) = server_binned(&server);
        let robots: Vec<Cli> = (0..4)
            .map(|_| Cli::new(&server.url).with_token(&robot_token))
            .collect();
        let targets_before = version_of(&server, GUN, "targets");
        let digests: Vec<Vec<(String, String)>> = std::thread::scope(|s| {
            // The publisher re-signs targets (signed publishes) meanwhile.
            let signed = s.spawn(|| {
                for _ in 0..3 {
                    publisher.ok(&["refresh", GUN]);
                }
            });
            let handles: Vec<_> = robots
                .iter()
                .enumerate()
                .map(|(n, robot)| {
                    s.spawn(move || {
                        (0..3)
                            .map(|i| {
                                let tag = format!("r{n}-{i}");
                                let digest = robot.tag_set(GUN, &tag);
                                (tag, digest)
                            })
                            .collect()
                    })
                })
                .collect();
            signed.join().unwrap();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let consumer = Cli::new(&server.url);
        for (tag, digest) in digests.iter().flatten() {
            assert_eq!(&consumer.lookup(GUN, tag), digest, "{tag}");
        }
        assert_eq!(version_of(&server, GUN, "targets"), targets_before + 3);
    }
}
