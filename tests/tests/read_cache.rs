//! The read cache (issue 10): current files served from memory never hide
//! a committed change for longer than the documented bound. In the process
//! that committed, a read right after the publish sees it; another process
//! on the same PostgreSQL sees it when the `NOTIFY` arrives, and in any
//! case once the cache's time to live (`--read-cache-ms`) has passed.

use std::process::{Command, Stdio};
use tagtrust_tests::{bin_path, Backend, Cli, ServerProcess, TestServer};

const GUN: &str = "localhost:5000/cache/app";

/// A second server process on `server`'s database.
fn second_process(server: &TestServer, args: &[&str]) -> ServerProcess {
    let mut cmd = Command::new(bin_path("tagtrust-server"));
    cmd.args(server.storage_args())
        .args(args)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    ServerProcess::start(cmd)
}

fn timestamp(base: &str) -> Vec<u8> {
    reqwest::blocking::get(format!("{base}/v2/{GUN}/_trust/tuf/timestamp.json"))
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec()
}

#[test]
fn the_committing_process_serves_its_change_at_once() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let (publisher, _) = Cli::publisher(&server, "push:*", GUN);
        for n in 0..3 {
            let before = timestamp(&server.url);
            publisher.tag_set(GUN, &format!("t{n}"));
            assert_ne!(
                timestamp(&server.url),
                before,
                "{backend:?}: a stale timestamp"
            );
            // And the consumer resolves the tag just published.
            let consumer = Cli::new(&server.url);
            consumer.lookup(GUN, &format!("t{n}"));
        }
    }
}

#[test]
fn another_process_on_postgresql_sees_a_change_by_notify_and_within_the_bound() {
    let Some(backend) = Backend::all().into_iter().find(|b| *b == Backend::Postgres) else {
        return;
    };
    let server = TestServer::spawn(backend);
    let (publisher, _) = Cli::publisher(&server, "push:*", GUN);
    // A cache that would hold entries for a minute: only NOTIFY can make
    // this process see the next publish soon.
    let listening = second_process(&server, &["--read-cache-ms", "60000"]);
    // A process with the default cache (1 s): whether by NOTIFY or by the
    // time to live, it serves the change within the bound. (The time to
    // live alone is unit-tested in server/src/cache.rs.)
    let bounded = second_process(&server, &[]);
    let cached = timestamp(&listening.url);
    assert_eq!(timestamp(&bounded.url), cached);
    publisher.tag_set(GUN, "next");
    let current = timestamp(&server.url);
    assert_ne!(current, cached);
    let mut seen = false;
    for _ in 0..100 {
        if timestamp(&listening.url) == current {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "the listening process never saw the publish");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        timestamp(&bounded.url),
        current,
        "served past the 1 s bound"
    );
}
