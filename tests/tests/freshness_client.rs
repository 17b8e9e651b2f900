//! The consumer's freshness policy through the real binaries: offline mode
//! with and without a grace period, and `max_age` on the timestamp's
//! signing time. The client's clock is moved with `faketime`.

use tagtrust_tests::{succeeded, Backend, Cli, Published, TestServer};

const GUN: &str = "registry.example.com/acme/app";

/// A server whose `latest` is published; returns it and the digest.
fn published() -> (TestServer, String) {
    let published = Published::spawn(Backend::Sqlite, GUN);
    (published.server, published.digest)
}

#[test]
fn offline_uses_local_metadata_and_still_refuses_expired_without_grace() {
    let (mut server, digest) = published();
    let latest = format!("{GUN}:latest");
    let consumer = Cli::new(&server.url);
    assert_eq!(consumer.lookup(GUN, "latest"), digest);

    server.stop();
    // Online fails without the server; offline works and says so.
    consumer.fails(&["lookup", &latest]);
    let out = consumer.run(&["lookup", &latest, "--offline"]);
    succeeded(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
    assert!(String::from_utf8_lossy(&out.stderr).contains("offline"));

    // Two days on, the one-day timestamp has expired: refused offline too...
    let out = consumer.run_at("+2d", &["lookup", &latest, "--offline"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expired") && err.contains("--max-stale"),
        "{err}"
    );
    // ...unless the consumer grants a grace period that covers it.
    let out = consumer.run_at(
        "+2d",
        &["lookup", &latest, "--offline", "--max-stale", "3d"],
    );
    succeeded(&out);
    let out = consumer.run_at(
        "+2d",
        &["lookup", &latest, "--offline", "--max-stale", "12h"],
    );
    assert!(!out.status.success());

    // A GUN never seen cannot be used offline.
    let err = consumer.fails(&[
        "lookup",
        "registry.example.com/acme/other:latest",
        "--offline",
    ]);
    assert!(err.contains("offline"), "{err}");
}

#[test]
fn max_age_refuses_a_timestamp_signed_too_long_ago() {
    let (server, digest) = published();
    let latest = format!("{GUN}:latest");
    let consumer = Cli::new(&server.url);
    assert_eq!(
        consumer.ok(&["lookup", &latest, "--max-age", "1h"]).trim(),
        digest
    );

    // Three hours on, the timestamp is unexpired (it lives a day) but old.
    let out = consumer.run_at("+3h", &["lookup", &latest, "--max-age", "1h"]);
    assert!(!out.status.success(), "an old timestamp passed max_age");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_age"), "{err}");
    let out = consumer.run_at("+3h", &["lookup", &latest, "--max-age", "4h"]);
    succeeded(&out);

    // The same policy from config.toml.
    std::fs::write(
        consumer.home.path().join("config.toml"),
        "[freshness]\nmax_age = \"1h\"\n",
    )
    .unwrap();
    let out = consumer.run_at("+3h", &["lookup", &latest]);
    assert!(!out.status.success(), "config max_age ignored");
}

/// A grace reaching before the calendar's start is a one-line error with
/// exit status 1, not a panic in date arithmetic.
#[test]
fn an_absurd_max_stale_is_an_error_not_a_panic() {
    let (server, digest) = published();
    let latest = format!("{GUN}:latest");
    let consumer = Cli::new(&server.url);
    assert_eq!(consumer.lookup(GUN, "latest"), digest);
    for grace in ["300000years", "584542046090years"] {
        let out = consumer.run(&["lookup", &latest, "--offline", "--max-stale", grace]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(1) | Some(2)),
            "--max-stale {grace}: {:?} {err}",
            out.status
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            err.trim_end()
                .lines()
                .last()
                .map(|l| l.starts_with("tagtrust: ")),
            Some(true),
            "{err}"
        );
    }
}

/// The server publishes how old a healthy timestamp can get
/// (`x-tagtrust-timestamp-max-age`); a consumer `max_age` shorter than
/// that is named up front, and the README's `--max-age 2h` and
/// `max_age = "1h"` are quiet against a default server.
#[test]
fn a_max_age_shorter_than_the_servers_cadence_is_said_up_front() {
    let (server, digest) = published();
    let latest = format!("{GUN}:latest");
    let consumer = Cli::new(&server.url);
    let out = consumer.run(&["lookup", &latest, "--max-age", "10m"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("max_age 10m is shorter than the 31m"),
        "no notice about the server's cadence: {err}"
    );
    for policy in ["2h", "1h"] {
        let out = consumer.run(&["lookup", &latest, "--max-age", policy]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
        assert!(!err.contains("max_age"), "--max-age {policy}: {err}");
    }
}
