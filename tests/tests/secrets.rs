//! Secrets at rest and in logs, against the real binaries on SQLite and
//! (with `TAGTRUST_TEST_POSTGRES_URL`) PostgreSQL.
//!
//! The run: one data directory (and database) served by successive server
//! processes at `RUST_LOG=trace`, `debug` and `info`, in text and
//! `--log-format json`, all stderr captured (the `token` subcommands' too).
//! In each, the real `tagtrust` CLI creates a repository, publishes, rotates
//! both online keys (new roots listing them) and publishes again; tokens
//! are created, used, revoked, and a few requests are refused.
//!
//! Afterwards we dump the whole database (SQLite: the file, WAL, SHM and
//! journal bytes plus the `sqlite3` `.dump` text; PostgreSQL: every row of
//! every table as `row_to_json` text), read every file in the data
//! directory and every log line, and assert:
//!
//! * the master key file is mode 0600, and the master key (base64, hex or
//!   raw) appears nowhere else: not in the database, not in any log;
//! * no token (`tt_…`, its hex secret in either case, or its raw bytes)
//!   appears anywhere; their SHA-256 does appear in the database, which
//!   shows the dump is the place tokens live;
//! * every online key row holds a 60-byte AES-GCM blob (nonce, ciphertext,
//!   tag), not a raw 32-byte seed, and no 32-byte window of it is an
//!   ed25519 seed of that row's public key (or of any server key);
//! * nowhere in the dumps, files and logs is there a 64-hex-digit run, a
//!   44-character base64 run or a Debug-printed 32-byte array that is an
//!   ed25519 seed of any server-held public key (every row of the online
//!   key table: current and rotated-out keys alike). The server keys' public
//!   parts are found in the dump, so the scan looks where they live.
//!
//! What this does not prove: that no *other* encoding of a seed (say, a
//! raw 32-byte window anywhere in the SQLite pages) occurs; scanning every
//! window of a whole dump through ed25519 is too slow for a test. The raw
//! form is checked exactly where the seeds are stored (the key table's
//! column), and the encodings a log or a JSON column would use are checked
//! everywhere. Decrypting is impossible without the master key by design,
//! so the check is structural, not a comparison with known private keys.

use std::collections::BTreeSet;
use std::fs::File;

use std::process::Command;

use tagtrust_shared::{PublicKey, SigningKey};
use tagtrust_tests::database::{
    contains_bytes, dump_database, files_under, postgres_query, sqlite_file, sqlite_query,
};
use tagtrust_tests::{
    base64, bin_path, fresh_postgres_database, random_digest, Backend, Cli, ServerProcess,
};

/// Where one backend's state lives.
struct Store {
    data_dir: tempfile::TempDir,
    database_url: Option<String>,
    logs: tempfile::TempDir,
}

impl Store {
    fn new(backend: Backend) -> Store {
        Store {
            data_dir: tempfile::tempdir().unwrap(),
            database_url: match backend {
                Backend::Sqlite => None,
                Backend::Postgres => Some(fresh_postgres_database()),
            },
            logs: tempfile::tempdir().unwrap(),
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.data_dir.path().display().to_string(),
        ];
        if let Some(url) = &self.database_url {
            args.extend(["--database-url".to_string(), url.clone()]);
        }
        args
    }

    fn log_file(&self, name: &str) -> File {
        File::options()
            .create(true)
            .append(true)
            .open(self.logs.path().join(name))
            .unwrap()
    }

    /// Run a `token` subcommand at this log level; its stderr goes to the log.
    fn token(&self, level: &str, format: &str, args: &[&str]) -> String {
        let out = Command::new(bin_path("tagtrust-server"))
            .args(self.args())
            .args(["--log-format", format])
            .arg("token")
            .args(args)
            .env("RUST_LOG", level)
            .stderr(self.log_file(&format!("token-{level}-{format}.log")))
            .output()
            .unwrap();
        assert!(out.status.success(), "token {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A server process whose stderr goes to a log file.
fn start_logged(store: &Store, level: &str, format: &str) -> ServerProcess {
    let mut cmd = Command::new(bin_path("tagtrust-server"));
    cmd.args(store.args())
        .args(["--log-format", format])
        .env("RUST_LOG", level)
        .stderr(store.log_file(&format!("server-{level}-{format}.log")));
    ServerProcess::start(cmd)
}

/// One run's workload; returns every token it created.
fn workload(store: &Store, level: &str, format: &str, gun: &str) -> Vec<String> {
    let server = start_logged(store, level, format);
    let push = store
        .token(level, format, &["create", "--scope", "push:*"])
        .trim()
        .to_string();
    let name = format!("revoke-{level}-{format}");
    let doomed = store
        .token(
            level,
            format,
            &["create", "--scope", "admin:*", "--name", &name],
        )
        .trim()
        .to_string();
    let cli = Cli::new(&server.url).with_token(&push);
    cli.ok(&["init", gun]);
    let tag = format!("{gun}:latest");
    let (digest, size) = random_digest();
    cli.ok(&["tag", "set", &tag, &digest, "--size", &size.to_string()]);
    for role in ["timestamp", "snapshot"] {
        cli.ok(&["key", "rotate", gun, role]);
    }
    let (digest, size) = random_digest();
    cli.ok(&["tag", "set", &tag, &digest, "--size", &size.to_string()]);
    assert_eq!(
        Cli::new(&server.url).ok(&["lookup", &tag]).trim(),
        digest,
        "the published tag resolves"
    );

    // Use, revoke and reuse a token; refused requests of every kind.
    let http = reqwest::blocking::Client::new();
    let rotate = |token: &str| {
        http.post(format!("{}/v2/{gun}/_trust/tuf/snapshot.key", server.url))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let pull = store
        .token(level, format, &["create", "--scope", "pull:*"])
        .trim()
        .to_string();
    assert_eq!(rotate(&pull), 403);
    assert_eq!(rotate(&format!("{push}0")), 401);
    let list = store.token(level, format, &["list"]);
    let id = list
        .lines()
        .find(|l| l.split('\t').nth(1) == Some(name.as_str()))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    store.token(level, format, &["revoke", &id]);
    assert_eq!(rotate(&doomed), 401);
    let resp = http
        .post(format!("{}/v2/{gun}/_trust/tuf/", server.url))
        .bearer_auth(&push)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    vec![push, doomed, pull]
}

/// (public key, sealed seed) of every row of the online key table.
fn online_key_rows(store: &Store) -> Vec<(PublicKey, Vec<u8>)> {
    let rows = match &store.database_url {
        None => sqlite_query(
            &sqlite_file(store.data_dir.path()),
            "SELECT public_key || char(9) || hex(encrypted_seed) FROM online_keys",
        ),
        Some(url) => postgres_query(
            url,
            "SELECT public_key || chr(9) || encode(encrypted_seed, 'hex') FROM online_keys",
        ),
    };
    rows.iter()
        .map(|row| {
            let (key, seed) = row.split_once('\t').unwrap();
            (
                serde_json::from_str(key).unwrap(),
                hex::decode(seed).unwrap(),
            )
        })
        .collect()
}

fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let text: Vec<u8> = text.iter().copied().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Every 32-byte value written out in `bytes` as a run of exactly 64 hex
/// digits, a 43/44-character base64 run, or a Debug `[1, 2, …]` array.
fn encoded_32_byte_values(bytes: &[u8]) -> BTreeSet<[u8; 32]> {
    let mut found = BTreeSet::new();
    let runs = |is: fn(u8) -> bool| -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut start = None;
        for (i, &b) in bytes.iter().chain(std::iter::once(&b'\0')).enumerate() {
            match (is(b), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    runs.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        runs
    };
    for (s, e) in runs(|b| b.is_ascii_hexdigit()) {
        if e - s == 64 {
            let text = std::str::from_utf8(&bytes[s..e]).unwrap();
            found.insert(hex::decode(text).unwrap().try_into().unwrap());
        }
    }
    for (s, e) in runs(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(&b)) {
        if (43..=44).contains(&(e - s)) {
            if let Some(decoded) = base64_decode(&bytes[s..e]) {
                if let Ok(value) = <[u8; 32]>::try_from(decoded.as_slice()) {
                    found.insert(value);
                }
            }
        }
    }
    // Debug-printed arrays: `[n, n, …]` with 32 numbers.
    let text = String::from_utf8_lossy(bytes);
    for part in text.split('[').skip(1) {
        let Some(inner) = part.split(']').next() else {
            continue;
        };
        let numbers: Vec<Option<u8>> = inner.split(',').map(|n| n.trim().parse().ok()).collect();
        if numbers.len() == 32 && numbers.iter().all(Option::is_some) {
            let value: Vec<u8> = numbers.into_iter().map(Option::unwrap).collect();
            found.insert(value.try_into().unwrap());
        }
    }
    found
}

/// Is `candidate` the ed25519 seed of one of `keys`?
fn is_seed_of(candidate: &[u8], keys: &BTreeSet<String>) -> bool {
    SigningKey::from_seed(candidate).is_ok_and(|k| keys.contains(&k.public_key().keyval.public))
}

#[test]
fn no_key_material_or_tokens_at_rest_or_in_logs() {
    for backend in Backend::all() {
        let store = Store::new(backend);
        let mut tokens = Vec::new();
        let mut guns = Vec::new();
        for (i, (level, format)) in [
            ("trace", "text"),
            ("trace", "json"),
            ("debug", "text"),
            ("debug", "json"),
            ("info", "text"),
            ("info", "json"),
        ]
        .into_iter()
        .enumerate()
        {
            let gun = format!("registry.example.com/secrets/app{i}");
            tokens.extend(workload(&store, level, format, &gun));
            guns.push(gun);
        }

        // (a) The master key file is private; its value is known.
        let master_path = store.data_dir.path().join("master.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&master_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{backend:?}: master.key mode");
        }
        let master_b64 = std::fs::read_to_string(&master_path)
            .unwrap()
            .trim()
            .to_string();
        let master = base64_decode(master_b64.as_bytes()).unwrap();
        assert_eq!(master.len(), 32);
        assert_eq!(base64(&master), master_b64);

        // (b) The online key rows: sealed blobs, not seeds.
        let rows = online_key_rows(&store);
        // 6 repositories, each with an initial and a rotated key per role.
        assert!(rows.len() >= guns.len() * 4, "{} key rows", rows.len());
        let server_keys: BTreeSet<String> =
            rows.iter().map(|(k, _)| k.keyval.public.clone()).collect();
        assert_eq!(server_keys.len(), rows.len(), "server keys are distinct");
        for (public, sealed) in &rows {
            assert_eq!(sealed.len(), 12 + 32 + 16, "nonce + ciphertext + tag");
            for window in sealed.windows(32) {
                assert!(
                    !is_seed_of(window, &server_keys),
                    "{backend:?}: the seed of {} is stored in clear",
                    public.key_id()
                );
            }
        }
        // Every key the server serves is one of those rows.
        let http = reqwest::blocking::Client::new();
        let server = start_logged(&store, "warn", "text");
        for gun in &guns {
            for role in ["timestamp", "snapshot"] {
                let served: PublicKey = http
                    .get(format!("{}/v2/{gun}/_trust/tuf/{role}.key", server.url))
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                assert!(server_keys.contains(&served.keyval.public), "{gun} {role}");
            }
        }
        drop(server);

        // What to scan: the database, every data-directory file, every log.
        let dump = dump_database(store.data_dir.path(), store.database_url.as_deref());
        let mut blobs: Vec<(String, Vec<u8>)> = vec![("database dump".into(), dump.clone())];
        for path in files_under(store.data_dir.path()) {
            blobs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
        let logs = files_under(store.logs.path());
        // A server and a token log per run, plus the `warn` key check's.
        assert_eq!(logs.len(), 13, "log files");
        let mut log_bytes = 0;
        for path in logs {
            let bytes = std::fs::read(&path).unwrap();
            log_bytes += bytes.len();
            blobs.push((path.display().to_string(), bytes));
        }
        // Trace level logs something (the scan is not of empty files).
        let trace_log = std::fs::read(store.logs.path().join("server-trace-json.log")).unwrap();
        assert!(
            trace_log.len() > 10_000,
            "trace log is {} bytes",
            trace_log.len()
        );
        eprintln!("{backend:?}: scanning {} bytes of logs", log_bytes);

        // The public parts are in the dump: the scan looks where keys live.
        for public in &server_keys {
            assert!(
                contains_bytes(&dump, public.as_bytes()),
                "{public} not in dump"
            );
        }

        for (name, bytes) in &blobs {
            let is_master_file = name.ends_with("master.key");
            if !is_master_file {
                assert!(
                    !contains_bytes(bytes, master_b64.as_bytes())
                        && !contains_bytes(bytes, hex::encode(&master).as_bytes())
                        && !contains_bytes(bytes, &master),
                    "{backend:?}: the master key appears in {name}"
                );
            }
            for token in &tokens {
                let secret = token.strip_prefix("tt_").unwrap();
                let raw = hex::decode(secret).unwrap();
                assert!(
                    !contains_bytes(bytes, token.as_bytes())
                        && !contains_bytes(bytes, secret.as_bytes())
                        && !contains_bytes(bytes, secret.to_uppercase().as_bytes())
                        && !contains_bytes(bytes, base64(&raw).as_bytes())
                        && !contains_bytes(bytes, &raw),
                    "{backend:?}: a token appears in {name}"
                );
            }
            for value in encoded_32_byte_values(bytes) {
                assert!(
                    !is_seed_of(&value, &server_keys),
                    "{backend:?}: an online private key appears (encoded) in {name}"
                );
            }
        }
        // Tokens are stored, as hashes.
        for token in &tokens {
            let hash = tagtrust_shared::hashes::sha256_hex(token.as_bytes());
            assert!(
                contains_bytes(&dump, hash.as_bytes()),
                "token hash not in dump"
            );
        }
    }
}

/// The scanner finds each encoding it claims to (so a leak would be seen).
#[test]
fn the_scanner_sees_every_encoding_it_checks() {
    let key = SigningKey::generate();
    let keys: BTreeSet<String> = [key.public_key().keyval.public].into_iter().collect();
    let seed = key.seed();
    for text in [
        format!("level=debug seed={} more", hex::encode(seed)),
        format!("{{\"k\":\"{}\"}}", base64(&seed)),
        format!("{{\"k\":\"{}\"}}", base64(&seed).trim_end_matches('=')),
        format!("SigningKey {{ inner: {seed:?} }}"),
    ] {
        let found = encoded_32_byte_values(text.as_bytes());
        assert!(
            found.iter().any(|v| is_seed_of(v, &keys)),
            "missed the seed in {text}"
        );
    }
    assert!(!is_seed_of(&[0u8; 32], &keys));
}
