//! Moving from a running notary-server to tagtrust-server (issue 11):
//! `tagtrust-server import-notary` copies a repository that the real
//! `notary` CLI published to Debian's notary-server (several versions, a
//! delegation, a root key rotation) byte for byte; trust directories that
//! knew the old server are pointed at tagtrust and keep working without
//! re-trust or warning; the repository is reported as awaiting its
//! timestamp key rotation (command and metric) and refuses publishes with
//! Notary's typed error until `notary key rotate GUN timestamp -r`, after
//! which publishing works and the consumer follows. A source serving a
//! changed past version is refused with nothing stored, and so is a GUN
//! already held. On SQLite and PostgreSQL.

use reqwest::StatusCode;
use std::process::{Command, Output, Stdio};
use tagtrust_tests::notary::{self_signed_certificate, Notary, NotaryServer};
use tagtrust_tests::proxy::{Tamper, TamperingProxy};
use tagtrust_tests::{bin_path, http, metric, metrics, Backend, TestServer};

const GUN: &str = "example.com/acme/imported";
const RELEASES: &str = "targets/releases";

fn names(rows: &[(String, String, u64, String)]) -> Vec<&str> {
    rows.iter().map(|(name, ..)| name.as_str()).collect()
}

fn get(url: &str) -> (StatusCode, Vec<u8>) {
    let response = http().get(url).send().unwrap();
    (response.status(), response.bytes().unwrap().to_vec())
}

/// `tagtrust-server import-notary --from SOURCE WHICH` (`GUN` or `--all`)
/// on `server`'s database, the server stopped meanwhile (as an operator
/// would before the switch) and started again after.
fn import(server: &mut TestServer, source: &str, which: &str) -> Output {
    server.stop();
    let out = Command::new(bin_path("tagtrust-server"))
        .args(server.storage_args())
        .args(["import-notary", "--from", source, which])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run tagtrust-server import-notary");
    server.start();
    out
}

/// `tagtrust-server notary-pending -o json`, parsed.
fn pending(server: &TestServer) -> serde_json::Value {
    let out = Command::new(bin_path("tagtrust-server"))
        .args(server.storage_args())
        .args(["notary-pending", "-o", "json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tagtrust-server notary-pending");
    tagtrust_tests::json(&tagtrust_tests::succeeded(&out))
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `notary list` with nothing on stderr (no warning, no re-trust prompt).
fn quiet_list(user: &Notary) -> Vec<String> {
    let out = user.run(&["list", GUN]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        out.stderr.is_empty(),
        "notary list warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    user.list(GUN).into_iter().map(|row| row.0).collect()
}

/// Debian's multi-threaded libfaketime (package `faketime`), whatever the
/// architecture's library directory.
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(|dir| Some(dir.ok()?.path().join("faketime/libfaketimeMT.so.1")))
        .find(|path| path.exists())
        .expect("libfaketime (.ci/run installs faketime)")
}

#[test]
fn a_notary_server_repository_is_imported_and_its_trust_directories_keep_working() {
    // The old world: notary-server, a publisher (with a delegation key of
    // its own) and a consumer that has read the repository.
    let old = NotaryServer::start();
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("manifest.json");
    std::fs::write(&manifest, b"{\"schemaVersion\":2,\"layers\":[]}\n").unwrap();
    let manifest = manifest.to_str().unwrap();
    let publisher = Notary::new(&old.url, "unused");
    publisher.ok(&["init", GUN]);
    publisher.ok(&["add", GUN, "v1", manifest]);
    publisher.ok(&["publish", GUN]);
    let consumer = Notary::new(&old.url, "unused");
    assert_eq!(names(&consumer.list(GUN)), ["v1"]);
    // One that reads nothing more before the switch: root 1 cached, it
    // walks the root rotation on tagtrust.
    let stale = Notary::new(&old.url, "unused");
    assert_eq!(names(&stale.list(GUN)), ["v1"]);
    publisher.ok(&["add", GUN, "v2", manifest]);
    publisher.ok(&["publish", GUN]);
    let (key, cert) = self_signed_certificate(work.path(), "releases");
    let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());
    publisher.ok(&[
        "delegation",
        "add",
        GUN,
        RELEASES,
        cert,
        "--paths",
        "rel/",
        "-p",
    ]);
    publisher.ok(&["key", "import", key, "--role", RELEASES, "--gun", GUN]);
    publisher.ok(&["add", GUN, "rel/1.0", manifest, "--roles", RELEASES]);
    publisher.ok(&["publish", GUN]);
    publisher.ok_with_input(&["key", "rotate", GUN, "root"], "yes\n");
    publisher.ok(&["add", GUN, "v3", manifest]);
    publisher.ok(&["publish", GUN]);
    // A GUN published and deleted again (`--all` leaves it out).
    let gone = "example.com/acme/gone";
    publisher.ok(&["init", gone, "-p"]);
    publisher.ok(&["delete", gone, "--remote"]);
    let before = ["rel/1.0", "v1", "v2", "v3"];
    assert_eq!(names(&consumer.list(GUN)), before);
    let old_tuf = format!("{}/v2/{GUN}/_trust/tuf/", old.url);
    let (_, old_timestamp) = get(&format!("{old_tuf}timestamp.json"));
    let (_, old_root_v1) = get(&format!("{old_tuf}1.root.json"));

    // A source that serves a changed past: version 2 of targets with one
    // byte of its signed part altered.
    let hostile = TamperingProxy::start(&old.url);
    let past = format!("/v2/{GUN}/_trust/tuf/2.targets.json");
    let (status, original) = get(&format!("{}{past}", old.url));
    assert_eq!(status, StatusCode::OK, "notary-server keeps targets v2");
    let text = String::from_utf8(original).unwrap();
    let changed = text.replacen("\"expires\":\"20", "\"expires\":\"21", 1);
    assert_ne!(changed, text);
    hostile.tamper(
        &past,
        Tamper::Serve {
            status: 200,
            body: changed.into_bytes(),
        },
    );

    for backend in Backend::all() {
        let mut server = TestServer::spawn(backend);
        // `--all` walks the changefeed: the deleted GUN is not there.
        let out = import(&mut server, &hostile.url, "--all");
        assert!(!out.status.success(), "{}", said(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("refused {GUN}")) && stderr.contains("2.targets.json"),
            "{stderr}"
        );
        assert!(stderr.contains("1 of 1 GUNs refused"), "{stderr}");
        let tuf = server.tuf_url(GUN);
        assert_eq!(get(&format!("{tuf}root.json")).0, StatusCode::NOT_FOUND);
        assert_eq!(pending(&server), serde_json::json!([]));

        let out = import(&mut server, &old.url, GUN);
        let stdout = tagtrust_tests::succeeded(&out);
        assert!(stdout.contains(&format!("imported {GUN}")), "{stdout}");
        let tuf = server.tuf_url(GUN);
        // Byte for byte, history included.
        assert_eq!(get(&format!("{tuf}timestamp.json")).1, old_timestamp);
        assert_eq!(get(&format!("{tuf}1.root.json")).1, old_root_v1);
        for file in [
            "root.json",
            "2.targets.json",
            "targets/releases.json",
            "2.root.json",
        ] {
            assert_eq!(
                get(&format!("{tuf}{file}")),
                get(&format!("{old_tuf}{file}")),
                "{file}"
            );
        }
        // Never replaced by a second import.
        let again = import(&mut server, &old.url, GUN);
        assert!(!again.status.success());
        assert!(said(&again).contains("already held"), "{}", said(&again));
        let tuf = server.tuf_url(GUN);

        // The switch: the same trust directories, pointed at tagtrust.
        let push = server.create_token(&["push:example.com/*"]);
        let admin = server.create_token(&["admin:example.com/*"]);
        let pull = server.create_token(&["pull:example.com/*"]);
        let reader = consumer.copied_to(&server.url, &pull);
        let writer = publisher.copied_to(&server.url, &push);
        let owner = writer.with_password(&admin);
        assert_eq!(quiet_list(&reader), before);
        assert_eq!(quiet_list(&stale.copied_to(&server.url, &pull)), before);
        let looked_up = reader.ok(&["lookup", GUN, "rel/1.0"]);
        assert!(looked_up.contains("rel/1.0"), "{looked_up}");
        let verified = reader
            .command()
            .args(["verify", GUN, "v1", "-i", manifest])
            .output()
            .unwrap();
        assert!(verified.status.success(), "{}", said(&verified));

        // Waiting for the rotation: reported, served as imported, and a
        // publish is refused with Notary's typed error, changing nothing.
        let waiting = pending(&server);
        assert_eq!(waiting[0]["gun"], GUN, "{waiting}");
        assert_eq!(waiting.as_array().unwrap().len(), 1);
        let gauge = |server: &TestServer| {
            metric(
                &metrics(&http(), &server.url),
                "tagtrust_notary_awaiting_rotation",
            )
        };
        assert_eq!(gauge(&server), Some(1.0));
        // A process whose clock is 13.5 days on, the imported timestamp (14
        // days, as notary-server signs them) inside its re-sign margin:
        // its scheduler passes over the repository (its first pass is at
        // start-up) and its reads serve the imported file, never trying to
        // sign without the key.
        // libfaketime preloaded into the server itself (not the `faketime`
        // wrapper, whose child would outlive the kill).
        let mut later = Command::new(bin_path("tagtrust-server"));
        later
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", "+324h")
            .args(server.storage_args())
            .env("RUST_LOG", "error")
            .stderr(Stdio::inherit());
        let later = tagtrust_tests::ServerProcess::start(later);
        let scraped = || metrics(&http(), &later.url);
        tagtrust_tests::wait_for(
            || metric(&scraped(), "tagtrust_resign_last_pass_timestamp_seconds") > Some(0.0),
            "a scheduler pass",
        );
        let served = get(&format!("{}/v2/{GUN}/_trust/tuf/timestamp.json", later.url));
        assert_eq!(served, (StatusCode::OK, old_timestamp.clone()));
        assert_eq!(
            metric(&scraped(), "tagtrust_resign_errors_total"),
            Some(0.0)
        );
        drop(later);
        writer.ok(&["add", GUN, "v4", manifest]);
        let refused = writer.fails(&["publish", GUN]);
        assert!(refused.contains("key rotate"), "{refused}");
        assert_eq!(get(&format!("{tuf}timestamp.json")).1, old_timestamp);
        writer.ok(&["reset", GUN, "--all"]);
        assert_eq!(quiet_list(&reader), before);

        // The standard Notary flow moves the timestamp key here; then the
        // repository is an ordinary hosted one.
        owner.ok(&["key", "rotate", GUN, "timestamp", "-r"]);
        assert_eq!(pending(&server), serde_json::json!([]));
        assert_eq!(gauge(&server), Some(0.0));
        assert_ne!(get(&format!("{tuf}timestamp.json")).1, old_timestamp);
        writer.ok(&["add", GUN, "v4", manifest]);
        writer.ok(&["publish", GUN]);
        assert_eq!(quiet_list(&reader), ["rel/1.0", "v1", "v2", "v3", "v4"]);
        // And the server may take the snapshot key too, as any Notary GUN.
        owner.ok(&["key", "rotate", GUN, "snapshot", "-r"]);
        writer.ok(&["add", GUN, "v5", manifest]);
        writer.ok(&["publish", GUN]);
        assert_eq!(
            quiet_list(&reader),
            ["rel/1.0", "v1", "v2", "v3", "v4", "v5"]
        );
    }
}
