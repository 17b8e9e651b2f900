//! The read cache (issue 10): current files served from memory never hide
//! a committed change for longer than the documented bound. In the process
//! that committed, a read right after the publish sees it; another process
//! on the same PostgreSQL sees it when the `NOTIFY` arrives, and in any
//! case once the cache's time to live (`--read-cache-ms`) has passed.

use tagtrust_tests::{initialised, wait_for, Backend, Cli};

const GUN: &str = "localhost:5000/cache/app";

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
        let (server, publisher, _) = initialised(backend, "push:*", GUN);
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
    let (server, publisher, _) = initialised(backend, "push:*", GUN);
    // A cache that would hold entries for a minute: only NOTIFY can make
    // this process see the next publish soon.
    let listening = server.another_process(&["--read-cache-ms", "60000"]);
    // A process with the default cache (1 s): whether by NOTIFY or by the
    // time to live, it serves the change within the bound. (The time to
    // live alone is unit-tested in server/src/cache.rs.)
    let bounded = server.another_process(&[]);
    let cached = timestamp(&listening.url);
    assert_eq!(timestamp(&bounded.url), cached);
    publisher.tag_set(GUN, "next");
    let current = timestamp(&server.url);
    assert_ne!(current, cached);
    wait_for(
        || timestamp(&listening.url) == current,
        "the listening process to see the publish",
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        timestamp(&bounded.url),
        current,
        "served past the 1 s bound"
    );
}

/// GET `{base}/v2/GUN/_trust/tuf/{file}`: the status and the bytes.
fn get(base: &str, file: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::blocking::get(format!("{base}/v2/{GUN}/_trust/tuf/{file}")).unwrap();
    (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
}

/// Versioned and checksummed files are kept in memory (`--file-cache-bytes`)
/// because they never change, except when their repository is deleted and
/// published again from version 1: the deleting process forgets them at
/// once, and on PostgreSQL another process does when the deletion's
/// `NOTIFY` arrives. No process serves the deleted repository's `1.root.json`
/// in place of the new one's.
#[test]
fn immutable_files_are_cached_until_their_repository_is_deleted() {
    for backend in Backend::all() {
        let (server, publisher, _) = initialised(backend, "push:*", GUN);
        publisher.tag_set(GUN, "one");
        let other = (backend == Backend::Postgres).then(|| {
            // Its current files live a minute: once it serves the next
            // publish, its listener is up.
            let other = server.another_process(&["--read-cache-ms", "60000"]);
            let cached = timestamp(&other.url);
            publisher.tag_set(GUN, "two");
            let current = timestamp(&server.url);
            assert_ne!(cached, current);
            wait_for(|| timestamp(&other.url) == current, "the listener to start");
            other
        });
        let bases: Vec<&str> = std::iter::once(server.url.as_str())
            .chain(other.as_ref().map(|p| p.url.as_str()))
            .collect();
        let (status, old_root) = get(&server.url, "1.root.json");
        assert_eq!(status, 200);
        let sha = tagtrust_shared::hashes::sha256_hex(&old_root);
        for base in &bases {
            // Twice: the second answer comes from the cache.
            for _ in 0..2 {
                assert_eq!(get(base, "1.root.json"), (200, old_root.clone()));
                assert_eq!(
                    get(base, &format!("root.{sha}.json")),
                    (200, old_root.clone())
                );
            }
        }

        let admin = server.create_token(&["admin:*"]);
        let resp = reqwest::blocking::Client::new()
            .delete(server.tuf_url(GUN))
            .bearer_auth(admin)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(get(&server.url, "1.root.json").0, 404, "{backend:?}");
        // Published again by someone else: other keys, another root 1.
        let (_again, _) = Cli::publisher(&server, "push:*", GUN);
        let (status, new_root) = get(&server.url, "1.root.json");
        assert_eq!(status, 200);
        assert_ne!(new_root, old_root);
        assert_eq!(get(&server.url, &format!("root.{sha}.json")).0, 404);
        if let Some(other) = &other {
            wait_for(
                || get(&other.url, "1.root.json") == (200, new_root.clone()),
                "the other process to forget the deleted repository's root",
            );
            assert_eq!(get(&other.url, &format!("root.{sha}.json")).0, 404);
        }
    }
}
