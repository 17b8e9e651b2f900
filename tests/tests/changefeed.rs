//! The changefeed mirrors follow (issue 9): one record per committed
//! publish, re-sign and deletion, in Notary v1's shape, paged by cursor,
//! scoped by token, and — the property a follower depends on — in commit
//! order, so polling with the last ID seen never misses a change, also on
//! PostgreSQL with many publishers committing at once.
//!
//! Counts for the race: `TAGTRUST_FEED_GUNS` (default 8) repositories,
//! each published `TAGTRUST_FEED_PUBLISHES` (default 10) times.

use reqwest::blocking::Client;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_tests::{env_number, http, Backend, Cli, Published, TestServer};

const GUN_A: &str = "localhost:5000/feed/a";
const GUN_B: &str = "localhost:5000/feed/b";

/// GET a feed path (with its query) on `server`, with `token` if given:
/// the status and the JSON body.
fn feed(http: &Client, server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = http.get(format!("{}/v2/{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.bytes().unwrap();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("GET {path}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// The records of a 200 answer, checked against its `count`.
fn records(http: &Client, server: &TestServer, path: &str, token: Option<&str>) -> Vec<Value> {
    let (status, body) = feed(http, server, path, token);
    assert_eq!(status, 200, "GET {path}: {body}");
    let records = body["records"].as_array().expect("records").clone();
    assert_eq!(body["count"], records.len(), "{body}");
    records
}

/// (GUN, version, category) of each record.
fn summary(records: &[Value]) -> Vec<(String, u64, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["GUN"].as_str().unwrap().to_string(),
                r["Version"].as_u64().unwrap(),
                r["Category"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn id(record: &Value) -> i64 {
    record["ID"]
        .as_str()
        .expect("ID is a string")
        .parse()
        .expect("ID is an integer")
}

fn update(gun: &str, version: u64) -> (String, u64, String) {
    (gun.to_string(), version, "update".to_string())
}

#[test]
fn every_committed_change_is_recorded_in_order_and_paged_by_cursor() {
    for backend in Backend::all() {
        // init (timestamp 1) and `latest` (2) of A; init of B; one more tag of A.
        let published = Published::spawn(backend, GUN_A);
        let (server, publisher) = (&published.server, &published.publisher);
        publisher.ok(&["init", GUN_B]);
        publisher.tag_set(GUN_A, "1.0");
        let http = http();
        let admin = server.create_token(&["admin:*"]);

        let all = records(&http, server, "_trust/changefeed", Some(&admin));
        assert_eq!(
            summary(&all),
            [
                update(GUN_A, 1),
                update(GUN_A, 2),
                update(GUN_B, 1),
                update(GUN_A, 3)
            ],
            "{backend:?}"
        );
        let ids: Vec<i64> = all.iter().map(id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let timestamp = server.fetch(GUN_A, "timestamp.json");
        assert_eq!(all[3]["SHA256"], sha256_hex(&timestamp));
        for record in &all {
            chrono::DateTime::parse_from_rfc3339(record["CreatedAt"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("CreatedAt of {record}: {e}"));
        }

        // One repository's feed, anonymously (reads are open by default).
        let only_b = records(&http, server, &format!("{GUN_B}/_trust/changefeed"), None);
        assert_eq!(summary(&only_b), [update(GUN_B, 1)]);
        assert_eq!(only_b[0], all[2]);
        let none = records(
            &http,
            server,
            "localhost:5000/feed/none/_trust/changefeed",
            None,
        );
        assert!(none.is_empty());

        // Paging forwards from a cursor, backwards from one, and from the end.
        let page = |query: &str| {
            records(
                &http,
                server,
                &format!("_trust/changefeed?{query}"),
                Some(&admin),
            )
        };
        assert_eq!(page("records=2"), all[..2]);
        assert_eq!(page(&format!("change_id={}&records=2", ids[1])), all[2..]);
        assert!(page(&format!("change_id={}", ids[3])).is_empty());
        assert_eq!(page(&format!("change_id={}&records=-2", ids[3])), all[1..3]);
        assert_eq!(page("change_id=-1&records=1"), all[3..]);
        assert_eq!(page("change_id=0&records=-3"), all[1..]);
        for bad in [
            "change_id=abc",
            "records=ten",
            "change_id=1.5",
            "records=1e3",
        ] {
            let (status, body) = feed(
                &http,
                server,
                &format!("_trust/changefeed?{bad}"),
                Some(&admin),
            );
            assert_eq!(
                (status, body["errors"][0]["code"].as_str()),
                (400, Some("INVALID_QUERY")),
                "{bad}: {body}"
            );
        }

        // A deletion is one more record, with no version and no checksum.
        let resp = http
            .delete(server.tuf_url(GUN_B))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let last = page("change_id=-1&records=1");
        assert_eq!(
            summary(&last),
            [(GUN_B.to_string(), 0, "deletion".to_string())]
        );
        assert_eq!(last[0]["SHA256"], "");
        assert!(id(&last[0]) > ids[3]);
    }
}

#[test]
fn the_global_feed_shows_a_token_only_the_repositories_it_may_pull() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        // `_` is a wildcard in SQL's LIKE: a scope for x_y must not see xzy.
        let guns = [
            "localhost:5000/feed/x_y",
            "localhost:5000/feed/xzy",
            "other/app",
        ];
        let (publisher, _) = Cli::publisher(&server, "push:*", guns[0]);
        for gun in &guns[1..] {
            publisher.ok(&["init", gun]);
        }
        let http = http();
        let seen = |scopes: &[&str]| -> BTreeSet<String> {
            let token = server.create_token(scopes);
            summary(&records(&http, &server, "_trust/changefeed", Some(&token)))
                .into_iter()
                .map(|(gun, _, _)| gun)
                .collect()
        };
        let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            seen(&["pull:localhost:5000/feed/x_y"]),
            set(&guns[..1]),
            "{backend:?}"
        );
        assert_eq!(seen(&["pull:localhost:5000/*"]), set(&guns[..2]));
        assert_eq!(
            seen(&["push:other/*", "pull:*/x_y"]),
            set(&[guns[0], guns[2]])
        );
        assert_eq!(seen(&["admin:*"]), set(&guns));
        assert!(seen(&["pull:nothing/*"]).is_empty());

        // No token, or a token for no repository at all, is refused.
        let metrics = server.create_token(&["metrics:*"]);
        assert_eq!(feed(&http, &server, "_trust/changefeed", None).0, 401);
        assert_eq!(
            feed(&http, &server, "_trust/changefeed", Some(&metrics)).0,
            403
        );
    }
}

#[test]
fn a_repository_feed_needs_pull_when_reads_do() {
    let server = TestServer::spawn_with(Backend::Sqlite, &["--require-pull"]);
    let (_publisher, _) = Cli::publisher(&server, "push:*", GUN_A);
    let http = http();
    let path = format!("{GUN_A}/_trust/changefeed");
    assert_eq!(feed(&http, &server, &path, None).0, 401);
    let other = server.create_token(&["pull:localhost:5000/feed/b"]);
    assert_eq!(feed(&http, &server, &path, Some(&other)).0, 403);
    let reader = server.create_token(&["pull:localhost:5000/feed/*"]);
    assert_eq!(
        summary(&records(&http, &server, &path, Some(&reader))),
        [update(GUN_A, 1)]
    );
}

#[test]
fn a_resigned_timestamp_is_a_change_too() {
    for backend in Backend::all() {
        let published = Published::spawn_with(
            backend,
            GUN_A,
            &[
                "--timestamp-cadence-secs",
                "2",
                "--resign-interval-secs",
                "1",
            ],
        );
        let http = http();
        let path = format!("{GUN_A}/_trust/changefeed?change_id=-1&records=1");
        let mut newest = summary(&records(&http, &published.server, &path, None));
        for _ in 0..40 {
            if newest[0].1 > 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            newest = summary(&records(&http, &published.server, &path, None));
        }
        // Published: init (1) and `latest` (2); the scheduler signed 3.
        assert!(
            newest[0].1 > 2,
            "{backend:?}: no re-sign recorded: {newest:?}"
        );
        let timestamp = published
            .server
            .fetch(GUN_A, &format!("{}.timestamp.json", newest[0].1));
        let latest = records(&http, &published.server, &path, None);
        assert_eq!(latest[0]["SHA256"], sha256_hex(&timestamp));
    }
}

/// Publishers on many repositories commit concurrently while a follower
/// polls the global feed in small pages with the last ID it saw. Afterwards
/// the follower has every record the feed holds, each once, in ID order,
/// and every timestamp version of every repository.
///
/// The server runs with a random delay of up to 30 ms between adding a
/// record and committing: without the ordering lock this test fails (it
/// was run so), while the natural window is too short to be hit reliably.
#[test]
fn a_follower_misses_nothing_while_many_publishers_commit() {
    for backend in Backend::all() {
        let guns = env_number("TAGTRUST_FEED_GUNS", 8) as usize;
        let publishes = env_number("TAGTRUST_FEED_PUBLISHES", 10) as usize;
        let server = TestServer::spawn_with(backend, &["--fault-changefeed-commit-delay-ms", "30"]);
        let admin = server.create_token(&["admin:*"]);
        let names: Vec<String> = (0..guns)
            .map(|i| format!("localhost:5000/feed/race{i}"))
            .collect();
        let publishers: Vec<Cli> = names
            .iter()
            .map(|gun| Cli::publisher(&server, "push:*", gun).0)
            .collect();

        let done = Arc::new(AtomicBool::new(false));
        let follower = {
            let (done, url, admin) = (done.clone(), server.url.clone(), admin.clone());
            std::thread::spawn(move || follow(&url, &admin, &done))
        };
        std::thread::scope(|scope| {
            for (publisher, gun) in publishers.iter().zip(&names) {
                scope.spawn(move || {
                    for n in 0..publishes {
                        publisher.tag_set(gun, &format!("t{n}"));
                    }
                });
            }
        });
        done.store(true, Ordering::SeqCst);
        let (seen, polls) = follower.join().expect("the follower");

        let http = http();
        let everything = read_all(&http, &server.url, &admin);
        assert_eq!(
            seen.iter().map(id).collect::<Vec<_>>(),
            everything.iter().map(id).collect::<Vec<_>>(),
            "{backend:?}: the follower ({polls} polls) and a full read differ"
        );
        let mut versions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (gun, version, _) in summary(&seen) {
            versions.entry(gun).or_default().push(version);
        }
        for gun in &names {
            assert_eq!(
                versions[gun],
                (1..=publishes as u64 + 1).collect::<Vec<_>>(),
                "{backend:?}: timestamps of {gun} as the follower saw them"
            );
        }
        eprintln!(
            "{backend:?}: {} records followed in {polls} polls",
            seen.len()
        );
    }
}

/// Poll the global feed, pages of 7 from the last ID seen, until `done`
/// and then once more; every record seen, and how many polls it took.
fn follow(url: &str, token: &str, done: &AtomicBool) -> (Vec<Value>, usize) {
    let http = http();
    let mut seen: Vec<Value> = Vec::new();
    let mut polls = 0;
    loop {
        let finished = done.load(Ordering::SeqCst);
        loop {
            let cursor = seen.last().map_or(0, id);
            let page = get_page(&http, url, token, &format!("change_id={cursor}&records=7"));
            polls += 1;
            let full = page.len() == 7;
            seen.extend(page);
            if !full {
                break;
            }
        }
        if finished {
            return (seen, polls);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn get_page(http: &Client, url: &str, token: &str, query: &str) -> Vec<Value> {
    let resp = http
        .get(format!("{url}/v2/_trust/changefeed?{query}"))
        .bearer_auth(token)
        .send()
        .expect("GET the changefeed");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().expect("a JSON page");
    body["records"].as_array().expect("records").clone()
}

/// The whole feed, in pages of the largest size.
fn read_all(http: &Client, url: &str, token: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let cursor = all.last().map_or(0, id);
        let page = get_page(
            http,
            url,
            token,
            &format!("change_id={cursor}&records=1000"),
        );
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}
