//! End to end through the real `tagtrust` and `tagtrust-server` binaries:
//! a publisher creates a repository and moves tags; independent consumers
//! (their own homes) resolve them with every TUF check, and refuse rollback
//! and freeze staged by a man-in-the-middle.

use serde_json::Value;
use tagtrust_tests::proxy::TamperingProxy;
use tagtrust_tests::{
    initialised, json, parse_json, random_digest, succeeded, Backend, Cli, Published, TestServer,
};

const GUN: &str = "localhost:5000/acme/app";

#[test]
fn publish_move_remove_and_resolve_from_another_home() {
    for backend in Backend::all() {
        let (server, publisher, _) = initialised(backend, "push:localhost:5000/acme/*", GUN);
        let (d1, s1) = random_digest();
        let (d2, s2) = random_digest();
        let latest = format!("{GUN}:latest");

        succeeded(&publisher.tag_set_digest(GUN, "latest", &d1, s1, &[]));
        assert_eq!(publisher.lookup(GUN, "latest"), d1);

        // A consumer on "another machine": own home, no token, trust on first use.
        let consumer = Cli::new(&server.url);
        let out = consumer.run(&["lookup", &latest]);
        succeeded(&out);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), d1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("on first use"),
            "TOFU notice missing: {stderr}"
        );

        // Rolling tag: move it and the consumer follows.
        succeeded(&publisher.tag_set_digest(GUN, "latest", &d2, s2, &[]));
        let v = json(&consumer.ok(&["lookup", &latest, "--output", "json"]));
        assert_eq!(v["digest"], d2.as_str());
        assert_eq!(v["size"], s2);
        assert_eq!(v["gun"], GUN);
        assert_eq!(v["tag"], "latest");
        assert_eq!(
            v["media_type"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(v["targets"]["version"], 3);
        assert_eq!(v["trust"], "stored");
        for role in ["root", "timestamp", "snapshot", "targets"] {
            assert!(v[role]["expires"].is_string(), "{role} expiry missing: {v}");
        }

        // A second tag, list, then remove the first.
        succeeded(&publisher.tag_set_digest(GUN, "1.5", &d1, s1, &[]));
        assert_eq!(consumer.tag_names(GUN), ["1.5", "latest"], "{backend:?}");

        let rm = json(&publisher.ok(&["tag", "rm", &latest, "--output", "json"]));
        assert_eq!(rm["digest"], Value::Null);
        let err = consumer.fails(&["lookup", &latest]);
        assert!(err.contains("not signed"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert_eq!(consumer.lookup(GUN, "1.5"), d1);

        // A consumer that starts from the publisher's root file.
        let root_file = publisher.trusted_dir(&server, GUN).join("root.json");
        let pinned = Cli::new(&server.url);
        let out = pinned
            .command()
            .args(["lookup", &format!("{GUN}:1.5"), "--root"])
            .arg(&root_file)
            .output()
            .unwrap();
        succeeded(&out);
        assert!(!String::from_utf8_lossy(&out.stderr).contains("first use"));
    }
}

#[test]
fn publishing_needs_a_token_with_push_scope() {
    let server = TestServer::spawn(Backend::Sqlite);
    let anonymous = Cli::new(&server.url);
    let err = anonymous.fails(&["init", GUN]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let other = Cli::new(&server.url).with_token(&server.create_token(&["push:other/*"]));
    other.fails(&["init", GUN]);
    // Nothing was created: a consumer finds no repository.
    Cli::new(&server.url).fails(&["lookup", &format!("{GUN}:latest")]);
}

#[test]
fn bad_input_gets_one_line_and_non_zero_exit() {
    let (_server, publisher, _) = initialised(Backend::Sqlite, "push:localhost:5000/acme/*", GUN);
    for line in [
        "tag set localhost:5000/acme/app sha256:00 --size 1",
        "tag set localhost:5000/acme/app:x sha256:zz --size 1",
        "lookup ../etc:latest",
        "lookup localhost:5000/acme/app@sha256:00",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let err = publisher.fails(&args);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

/// A man in the middle replays an older timestamp (and an older targets)
/// to a consumer that has seen newer ones: refused, and the consumer's
/// trusted state still works once the network is honest again.
#[test]
fn rollback_is_refused() {
    let (server, publisher, _) = initialised(Backend::Sqlite, "push:localhost:5000/acme/*", GUN);
    let latest = format!("{GUN}:latest");
    publisher.tag_set(GUN, "latest");
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", server.tuf_url(GUN)))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec()
    };
    let old_timestamp = get("timestamp.json");
    let old_targets = get("targets.json");
    let d2 = publisher.tag_set(GUN, "latest");

    let proxy = TamperingProxy::start(&server.url);
    let consumer = Cli::new(&proxy.url);
    assert_eq!(consumer.lookup(GUN, "latest"), d2);

    let prefix = format!("/v2/{GUN}/_trust/tuf/");
    proxy.serve(&format!("{prefix}timestamp.json"), 200, old_timestamp);
    let err = consumer.fails(&["lookup", &latest]);
    assert!(err.contains("rollback"), "{err}");

    // Older targets served where the newer version is expected.
    proxy.clear();
    proxy.serve(&format!("{prefix}3.targets.json"), 200, old_targets);
    let fresh = Cli::new(&proxy.url);
    let err = fresh.fails(&["lookup", &latest]);
    assert!(err.contains("targets"), "{err}");

    proxy.clear();
    assert_eq!(consumer.lookup(GUN, "latest"), d2);
    assert_eq!(fresh.lookup(GUN, "latest"), d2);
}

/// Indefinite freeze: a consumer whose clock is past the timestamp's expiry
/// (the server has not re-signed it, as a frozen mirror would serve it)
/// refuses the answer instead of falling back to what it has.
#[test]
fn freeze_is_refused() {
    let published = Published::spawn(Backend::Sqlite, GUN);
    let (latest, d1) = (format!("{GUN}:latest"), &published.digest);
    let consumer = published.consumer();
    assert_eq!(&consumer.lookup(GUN, "latest"), d1);

    // The timestamp lives one day: two days on, everything served is stale.
    let out = consumer.run_at("+2d", &["lookup", &latest]);
    assert!(!out.status.success(), "a frozen timestamp was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains("freeze"), "{err}");
    // The consumer's trusted state still works at the real time.
    assert_eq!(&consumer.lookup(GUN, "latest"), d1);
}

/// Items 4 and 12 of issue 7 through the binary: a pin written into
/// config.toml after the GUN is trusted is checked against that trust; a
/// disagreeing pin (another key, or a 2-of-2 pin the trusted 1-key root
/// cannot meet) is an error naming both, an agreeing one is quiet.
#[test]
fn a_pin_added_after_first_use_is_checked_against_stored_trust() {
    let Published { server, digest, .. } = Published::spawn(Backend::Sqlite, GUN);
    let latest = format!("{GUN}:latest");
    let root = tagtrust_tests::parse_json(&server.fetch(GUN, "1.root.json"));
    let root_key = root["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();

    let consumer = Cli::new(&server.url);
    consumer.ok(&["lookup", &latest]);
    let pin = |keys: &[&str], threshold: Option<u64>| {
        let mut text = format!("[pins.\"{GUN}\"]\nroot_keys = {keys:?}\n");
        if let Some(t) = threshold {
            text.push_str(&format!("root_threshold = {t}\n"));
        }
        std::fs::write(consumer.home.path().join("config.toml"), text).unwrap();
    };
    let other = "ab".repeat(32);
    pin(&[&other], None);
    let err = consumer.fails(&["lookup", &latest]);
    assert!(
        err.contains("disagrees with the trust stored")
            && err.contains(&other)
            && err.contains(&root_key),
        "{err}"
    );
    // Both keys pinned, all of them required: the trusted root has one.
    pin(&[&root_key, &other], None);
    let err = consumer.fails(&["lookup", &latest]);
    assert!(err.contains("threshold 2"), "{err}");
    // One of the two is enough, and it signed: quiet.
    pin(&[&root_key, &other], Some(1));
    let out = consumer.run(&["lookup", &latest]);
    succeeded(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // First use under a 2-of-2 pin: the served root (one root key,
    // threshold 1) does not get to lower the pin's threshold.
    let fresh = Cli::new(&server.url);
    std::fs::write(
        fresh.home.path().join("config.toml"),
        format!("[pins.\"{GUN}\"]\nroot_keys = [\"{root_key}\", \"{other}\"]\n"),
    )
    .unwrap();
    let err = fresh.fails(&["lookup", &latest]);
    assert!(err.contains("does not match the pinned root keys"), "{err}");
    assert!(!fresh.trusted_dir(&server, GUN).join("root.json").exists());
}

/// `tag set GUN --from-file LIST`: 200 tags signed and published as one new
/// targets version (one snapshot step), from a file or from standard input
/// (`-`); a list with one bad line is refused naming the line, and nothing
/// is published.
#[test]
fn a_tag_list_is_one_publish_and_a_bad_line_publishes_nothing() {
    use std::io::Write;
    for backend in Backend::all() {
        let (server, publisher, _) = initialised(backend, "push:localhost:5000/acme/*", GUN);
        let current = |role: &str| -> u64 {
            let body = reqwest::blocking::get(format!("{}{role}.json", server.tuf_url(GUN)))
                .unwrap()
                .bytes()
                .unwrap();
            parse_json(&body)["signed"]["version"].as_u64().unwrap()
        };
        let (targets_before, snapshot_before) = (current("targets"), current("snapshot"));
        let tags: Vec<(String, String, u64)> = (0..200)
            .map(|n| {
                let (digest, size) = random_digest();
                (format!("v{n}"), digest, size)
            })
            .collect();
        let list: String = std::iter::once("# a CI push\n".to_string())
            .chain(tags.iter().map(|(t, d, s)| format!("{t} {d} {s}\n")))
            .collect();
        let file = publisher.home.path().join("tags.txt");
        std::fs::write(&file, &list).unwrap();
        let path = file.to_str().unwrap();
        let out = publisher.ok(&["tag", "set", GUN, "--from-file", path, "-o", "json"]);
        let report = json(&out);
        assert_eq!(report["tags"], 200, "{report}");
        assert_eq!(current("targets"), targets_before + 1);
        assert_eq!(current("snapshot"), snapshot_before + 1);
        let consumer = Cli::new(&server.url);
        for (tag, digest, _) in tags.iter().step_by(40) {
            assert_eq!(&consumer.lookup(GUN, tag), digest);
        }

        // From standard input.
        let (digest, size) = random_digest();
        let mut child = publisher
            .command()
            .args(["tag", "set", GUN, "--from-file", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "latest {digest} {size}").unwrap();
        succeeded(&child.wait_with_output().unwrap());
        assert_eq!(consumer.lookup(GUN, "latest"), digest);

        // One bad line: nothing published.
        let targets_now = current("targets");
        let (other, size) = random_digest();
        std::fs::write(&file, format!("ok {other} {size}\nlatest {other} many\n")).unwrap();
        let stderr = publisher.fails(&["tag", "set", GUN, "--from-file", path]);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("line 2"), "{stderr}");
        assert_eq!(current("targets"), targets_now);
        assert_eq!(consumer.lookup(GUN, "latest"), digest);
    }
}
