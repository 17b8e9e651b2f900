//! Database unavailable while the server runs: writes answer 503 with a
//! reason (never a 500, never a hang without an answer), what the design
//! allows to keep working keeps working, and once the database is back the
//! same server process (same port, never restarted) publishes again.
//!
//! SQLite: another process holds the database's write lock (`BEGIN
//! EXCLUSIVE` from the `sqlite3` shell), so the file cannot be written.
//! Making the file unwritable with chmod is not an honest way to stage this:
//! the tests run as root, which ignores file modes, and even as another user
//! a running server keeps the read-write descriptors it opened at start-up
//! (permissions are checked at open), so a chmod changes nothing until a
//! restart. Moving the file away is no outage either: SQLite keeps writing
//! to the unlinked inode. A held write lock is what a stuck writer or a
//! backup tool does, and SQLite reports it as the database being busy.
//! In WAL mode readers never wait for the writer, so every stored version
//! stays readable, `/healthz` stays 200 (the database answers) and a
//! consumer still resolves tags.
//!
//! PostgreSQL: the test database stops accepting connections (`ALTER
//! DATABASE … ALLOW_CONNECTIONS false`) and the server's connections are
//! terminated (`pg_terminate_backend`). The server keeps nothing that
//! matters in its own memory (README, "Configuration": several stateless instances
//! share one PostgreSQL), so reads answer 503 too, as does `/healthz`; what
//! keeps working is the consumer's own trusted copy (`lookup --offline`).
//! Then connections are allowed again and the server recovers by itself.

use reqwest::blocking::multipart::{Form, Part};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tagtrust_tests::{
    http_with_timeout, postgres_admin_url, random_digest, succeeded, Backend, Cli, TestServer,
};

const GUN: &str = "localhost:5000/outage/app";

/// Requests during an outage may wait out the server's database timeouts.
fn http() -> reqwest::blocking::Client {
    http_with_timeout(Duration::from_secs(180))
}

/// Every stored version a consumer could ask for, with its bytes.
fn stored_versions(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    let http = http();
    let mut files = Vec::new();
    for role in ["root", "targets", "snapshot"] {
        for version in 1.. {
            let name = format!("{version}.{role}.json");
            let resp = http
                .get(format!("{}{name}", server.tuf_url(GUN)))
                .send()
                .unwrap();
            if resp.status() == 404 {
                break;
            }
            assert_eq!(resp.status(), 200, "GET {name}");
            files.push((name, resp.bytes().unwrap().to_vec()));
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    files
}

/// A publish straight to the API (any well-formed upload reaches the
/// repository lock before validation): status and body.
fn post_publish(server: &TestServer, token: &str) -> (u16, Value) {
    let form = Form::new().part(
        "files",
        Part::bytes(b"{}".to_vec())
            .file_name("targets.json")
            .mime_str("application/json")
            .unwrap(),
    );
    let resp = http()
        .post(server.tuf_url(GUN))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A 503 whose body says why, the way every API error does.
fn assert_unavailable(what: &str, status: u16, body: &Value) {
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{what}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("database"), "{what}: {body}");
}

fn healthz(server: &TestServer) -> u16 {
    http()
        .get(format!("{}/healthz", server.url))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// A publisher with one tag published, and a consumer that resolved it.
fn set_up(server: &TestServer) -> (Cli, String, Cli, String) {
    let (publisher, token) = Cli::publisher(server, "push:localhost:5000/outage/*", GUN);
    let digest = publisher.tag_set(GUN, "v1");
    let consumer = Cli::new(&server.url);
    assert_eq!(consumer.lookup(GUN, "v1"), digest);
    (publisher, token, consumer, digest)
}

/// After the outage: the same process publishes and serves again.
fn assert_recovered(server: &TestServer, publisher: &Cli, consumer: &Cli, port: u16) {
    assert_eq!(server.port, port, "the server was not restarted");
    let digest = publisher.tag_set(GUN, "v2");
    assert_eq!(consumer.lookup(GUN, "v2"), digest);
    assert_eq!(healthz(server), 200);
}

/// The `sqlite3` shell holding the write lock of a database until dropped.
struct SqliteWriteLock(Child);

impl SqliteWriteLock {
    fn take(db: &std::path::Path) -> SqliteWriteLock {
        // Wrapped at once, so the shell is waited for on every path.
        let mut lock = SqliteWriteLock(
            Command::new("sqlite3")
                .arg(db)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("the sqlite3 shell is installed"),
        );
        let stdin = lock.0.stdin.as_mut().unwrap();
        stdin
            .write_all(b"PRAGMA busy_timeout = 60000;\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
            .unwrap();
        stdin.flush().unwrap();
        // The shell echoes the pragma's value first.
        let mut reader = BufReader::new(lock.0.stdout.as_mut().unwrap());
        let mut output = String::new();
        let mut locked = false;
        for _ in 0..3 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            output.push_str(&line);
            if line.trim() == "locked" {
                locked = true;
                break;
            }
        }
        assert!(locked, "sqlite3 did not take the lock: {output}");
        lock
    }
}

impl Drop for SqliteWriteLock {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"ROLLBACK;\n");
        }
        let _ = self.0.wait();
    }
}

#[test]
fn sqlite_write_lock_held_elsewhere_gives_503_then_recovers() {
    let server = TestServer::spawn(Backend::Sqlite);
    let port = server.port;
    let (publisher, token, consumer, digest) = set_up(&server);
    let before = stored_versions(&server);
    let db = server.data_dir.path().join("tagtrust.db");
    let started = Instant::now();

    let lock = SqliteWriteLock::take(&db);
    // Writes wait out the busy timeout, then answer 503 with a reason; the
    // CLI passes that on in one line. Both at once, to wait only once.
    let (direct, cli) = std::thread::scope(|scope| {
        let direct = scope.spawn(|| post_publish(&server, &token));
        let (d, s) = random_digest();
        let cli = publisher.tag_set_digest(GUN, "v2", &d, s, &[]);
        (direct.join().unwrap(), cli)
    });
    assert_unavailable("publish", direct.0, &direct.1);
    assert!(!cli.status.success());
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(stderr.contains("unavailable"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Reads: every stored version, the current timestamp, health, lookups.
    assert_eq!(stored_versions(&server), before);
    assert_eq!(healthz(&server), 200);
    assert_eq!(consumer.lookup(GUN, "v1"), digest);
    eprintln!(
        "sqlite outage: writes refused with 503 after {:.1?}",
        started.elapsed()
    );
    drop(lock);

    assert_recovered(&server, &publisher, &consumer, port);
    // Nothing of the refused writes was stored: v2 is targets version 3.
    let targets: Value = serde_json::from_slice(
        &http()
            .get(format!("{}targets.json", server.tuf_url(GUN)))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(targets["signed"]["version"], 3);
}

/// Blocks connections to one PostgreSQL database until dropped.
struct PostgresOutage {
    admin: String,
    database: String,
    rt: tokio::runtime::Runtime,
}

impl PostgresOutage {
    fn begin(database_url: &str) -> PostgresOutage {
        let database = database_url
            .split('?')
            .next()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        assert!(database.starts_with("tagtrust_test_"), "{database}");
        let outage = PostgresOutage {
            admin: postgres_admin_url().unwrap(),
            database,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        };
        outage.run(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            outage.database
        ));
        let terminated = outage.run(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            outage.database
        ));
        eprintln!("postgres outage: terminated {terminated} server connections");
        outage
    }

    /// Run one statement on the admin connection; rows returned or affected.
    fn run(&self, sql: &str) -> u64 {
        use sqlx::{Connection, Executor};
        self.rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.admin)
                .await
                .expect("connect to TAGTRUST_TEST_POSTGRES_URL");
            let rows = conn
                .fetch_all(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.len() as u64
        })
    }
}

impl Drop for PostgresOutage {
    fn drop(&mut self) {
        self.run(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.database
        ));
    }
}

#[test]
fn postgres_connections_refused_gives_503_then_recovers() {
    if !Backend::all().contains(&Backend::Postgres) {
        return; // postgres_admin_url() printed the notice (and fails under CI).
    }
    let server = TestServer::spawn(Backend::Postgres);
    let port = server.port;
    let (publisher, token, consumer, digest) = set_up(&server);
    let before = stored_versions(&server);
    let files = ["1.root.json", "2.targets.json", "timestamp.json"];
    let get = |file: &str| {
        http()
            .get(format!("{}{file}", server.tuf_url(GUN)))
            .send()
            .unwrap()
    };
    let served: Vec<Vec<u8>> = files
        .iter()
        .map(|f| get(f).bytes().unwrap().to_vec())
        .collect();

    let outage = PostgresOutage::begin(server.database_url.as_deref().unwrap());
    assert_eq!(healthz(&server), 503);
    let (status, body) = post_publish(&server, &token);
    assert_unavailable("publish", status, &body);
    let (d, s) = random_digest();
    let stderr = publisher.fails(&[
        "tag",
        "set",
        &format!("{GUN}:v2"),
        &d,
        "--size",
        &s.to_string(),
    ]);
    // The CLI fails refreshing its metadata first (reads are down too).
    assert!(stderr.contains("503"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Reads: 503, never a 500 or a wrong answer. A file the read cache
    // still holds may be served (the same bytes as before the outage):
    // until the process notices its deletion listener's connection is gone
    // (file_cache.rs), or for a current file within the read cache's 1 s bound.
    for (file, before) in files.iter().zip(&served) {
        let resp = get(file);
        let status = resp.status().as_u16();
        let bytes = resp.bytes().unwrap();
        if status == 200 {
            assert_eq!(&bytes[..], &before[..], "{file} served from the cache");
            continue;
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_unavailable(file, status, &body);
    }
    // The consumer's own trusted copy keeps answering offline.
    let out = consumer.run(&["lookup", &format!("{GUN}:v1"), "--offline"]);
    succeeded(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
    drop(outage);

    // The pool reconnects on its own; wait (bounded) for health, then write.
    let deadline = Instant::now() + Duration::from_secs(120);
    while healthz(&server) != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(stored_versions(&server), before);
    assert_recovered(&server, &publisher, &consumer, port);
}
