//! Test harness shared by the end-to-end tests: find the built binaries,
//! spawn a real `tagtrust-server` on a free loopback port (SQLite file or a
//! fresh PostgreSQL database), and run the `tagtrust` CLI with its own home.
//!
//! Build the binaries before running these tests (`cargo build --workspace
//! --bins`); `scripts/test.sh` does.

pub mod database;
pub mod notary;
pub mod proxy;
pub mod registry;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary in the same target directory as this test.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .unwrap()
        .port()
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Both backends, for tests that must pass on each. PostgreSQL comes from
    /// `TAGTRUST_TEST_POSTGRES_URL`; without it the PostgreSQL run is skipped
    /// with a notice, except under `CI=true`, where that is a failure.
    pub fn all() -> Vec<Backend> {
        if postgres_admin_url().is_some() {
            vec![Backend::Sqlite, Backend::Postgres]
        } else {
            vec![Backend::Sqlite]
        }
    }
}

/// The PostgreSQL URL tests create their databases through.
pub fn postgres_admin_url() -> Option<String> {
    optional_setting("TAGTRUST_TEST_POSTGRES_URL", "PostgreSQL runs")
}

/// A test setting from the environment. Unset: `None` with a notice that
/// `what` is skipped, except under `CI=true`, where nothing may be skipped.
fn optional_setting(name: &str, what: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{name} must be set under CI=true (scripts/test.sh sets it)"
            );
            eprintln!("notice: {name} unset; skipping {what}");
            None
        }
    }
}

/// Create a fresh, uniquely named PostgreSQL database and return its URL.
pub fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url().expect("TAGTRUST_TEST_POSTGRES_URL");
    let name = format!("tagtrust_test_{:016x}", rand::random::<u64>());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to TAGTRUST_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
    });
    // Replace the database name (the last path segment) in the admin URL.
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(&base);
    format!("{base}/{name}{query}")
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll `GET url` until it answers 2xx. Panics, naming `what`, if the
/// process exits first (with `log()`, e.g. its log file) or after 60 s.
pub fn wait_until_answering(child: &mut Child, url: &str, what: &str, log: impl Fn() -> String) {
    let client = reqwest::blocking::Client::new();
    wait_until_answering_with(&client, child, url, what, log)
}

/// [`wait_until_answering`] with `client`'s requests (its default headers,
/// e.g. credentials).
pub fn wait_until_answering_with(
    client: &reqwest::blocking::Client,
    child: &mut Child,
    url: &str,
    what: &str,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if client
            .get(url)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        if let Some(status) = child.try_wait().expect("poll a child process") {
            panic!("{what} exited during start-up ({status}): {}", log());
        }
        assert!(Instant::now() < deadline, "{what} did not answer {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Spawn `cmd`, already told to serve HTTP on loopback `port` (stdin and
/// stdout closed; stderr as `cmd` says), and wait until `GET {url}{ready}`
/// answers 2xx (`what` and `log` say what failed otherwise). Returns the
/// base URL and the process, killed when dropped.
pub fn serve(
    mut cmd: Command,
    port: u16,
    ready: &str,
    what: &str,
    log: impl Fn() -> String,
) -> (String, KillOnDrop) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let url = format!("http://127.0.0.1:{port}");
    wait_until_answering(&mut child, &format!("{url}{ready}"), what, log);
    (url, KillOnDrop(child))
}

/// A `tagtrust-server` process on a free loopback port, killed when dropped.
pub struct ServerProcess {
    pub port: u16,
    pub url: String,
    _process: KillOnDrop,
}

impl ServerProcess {
    /// Run `cmd --listen 127.0.0.1:PORT` (stdin and stdout closed; stderr as
    /// `cmd` says) and wait until `/healthz` answers 200.
    pub fn start(mut cmd: Command) -> ServerProcess {
        let port = free_port();
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
        let (url, process) = serve(cmd, port, "/healthz", "tagtrust-server", String::new);
        ServerProcess {
            port,
            url,
            _process: process,
        }
    }
}

/// A running `tagtrust-server`, killed when dropped.
pub struct TestServer {
    pub url: String,
    pub port: u16,
    pub data_dir: tempfile::TempDir,
    pub database_url: Option<String>,
    pub backend: Backend,
    process: Option<ServerProcess>,
    extra_args: Vec<String>,
}

impl TestServer {
    pub fn spawn(backend: Backend) -> TestServer {
        Self::spawn_with(backend, &[])
    }

    /// Spawn with extra command-line arguments (e.g. short expiries).
    pub fn spawn_with(backend: Backend, extra_args: &[&str]) -> TestServer {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres_database()),
        };
        let mut server = TestServer {
            url: String::new(),
            port: 0,
            data_dir,
            database_url,
            backend,
            process: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        server.start();
        server
    }

    /// Arguments that select this server's data directory and database.
    pub fn storage_args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.data_dir.path().display().to_string(),
        ];
        if let Some(url) = &self.database_url {
            args.push("--database-url".into());
            args.push(url.clone());
        }
        args
    }

    /// Start (or restart, on a new free port) the server process and wait
    /// until `/healthz` answers.
    pub fn start(&mut self) {
        self.stop();
        let mut cmd = Command::new(bin_path("tagtrust-server"));
        cmd.args(self.storage_args())
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit());
        let process = ServerProcess::start(cmd);
        self.port = process.port;
        self.url = process.url.clone();
        self.process = Some(process);
    }

    /// Kill the server process (SIGKILL) and wait for it.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Another `tagtrust-server` process on this server's database, with
    /// `args` (killed with SIGKILL when dropped).
    pub fn another_process(&self, args: &[&str]) -> ServerProcess {
        let mut cmd = Command::new(bin_path("tagtrust-server"));
        cmd.args(self.storage_args())
            .args(args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit());
        ServerProcess::start(cmd)
    }

    /// Run `tagtrust-server token create` for these scopes; returns the token.
    pub fn create_token(&self, scopes: &[&str]) -> String {
        let mut cmd = Command::new(bin_path("tagtrust-server"));
        cmd.args(self.storage_args()).args(["token", "create"]);
        for scope in scopes {
            cmd.args(["--scope", scope]);
        }
        let out = cmd
            .env("RUST_LOG", "warn")
            .output()
            .expect("run token create");
        succeeded(&out).trim().to_string()
    }

    /// `{url}/v2/{gun}/_trust/tuf/`
    pub fn tuf_url(&self, gun: &str) -> String {
        format!("{}/v2/{gun}/_trust/tuf/", self.url)
    }
}

/// A `tagtrust` CLI user with their own `TAGTRUST_HOME`.
pub struct Cli {
    pub home: tempfile::TempDir,
    pub server: String,
    pub token: Option<String>,
}

/// The passphrase test users encrypt their keys with.
pub const TEST_PASSPHRASE: &str = "test passphrase";

impl Cli {
    pub fn new(server_url: &str) -> Cli {
        Cli {
            home: tempfile::tempdir().unwrap(),
            server: server_url.to_string(),
            token: None,
        }
    }

    pub fn with_token(mut self, token: &str) -> Cli {
        self.token = Some(token.to_string());
        self
    }

    /// The command, with home, server, token and passphrase set.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin_path("tagtrust"));
        cmd.env("TAGTRUST_HOME", self.home.path())
            .env("TAGTRUST_SERVER", &self.server)
            .env("TAGTRUST_PASSPHRASE", TEST_PASSPHRASE)
            .env_remove("TAGTRUST_TOKEN")
            .stdin(Stdio::null());
        if let Some(token) = &self.token {
            cmd.env("TAGTRUST_TOKEN", token);
        }
        cmd
    }

    /// Run with `args`; returns the output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run tagtrust")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ran_ok(&format!("tagtrust {args:?}"), &self.run(args))
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "tagtrust {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Cli {
    /// Another machine that was given this publisher's keys: its own home
    /// with copies of `keys/` and the trusted metadata `tuf/`, the same
    /// token, talking to `server_url`.
    pub fn copy_to(&self, server_url: &str) -> Cli {
        let cli = Cli {
            home: tempfile::tempdir().unwrap(),
            server: server_url.to_string(),
            token: self.token.clone(),
        };
        for dir in ["keys", "tuf"] {
            copy_dir(&self.home.path().join(dir), &cli.home.path().join(dir));
        }
        cli
    }

    /// `tagtrust key generate NAME` in this home: a key pair of this user's
    /// own (e.g. a root key holder's). Returns the encrypted private key
    /// file, a file with the public key PEM, and the key ID.
    pub fn generate_key(&self, name: &str) -> (PathBuf, PathBuf, String) {
        let private = self.home.path().join(format!("{name}.pem"));
        let out = utf8(&private);
        let report = json(&self.ok(&["key", "generate", name, "--out", out, "-o", "json"]));
        let public = self.home.path().join(format!("{name}.pub.pem"));
        std::fs::write(&public, report["public_key_pem"].as_str().unwrap()).unwrap();
        (
            private,
            public,
            report["key_id"].as_str().unwrap().to_string(),
        )
    }

    /// `tagtrust init GUN --root-key PUB… --root-threshold M -o json`: a
    /// multi-party root with the holders' own public keys.
    pub fn init_with_holders(
        &self,
        gun: &str,
        holders: &[&Path],
        threshold: u64,
    ) -> serde_json::Value {
        let mut args = vec!["init".to_string(), gun.to_string()];
        for public in holders {
            args.push("--root-key".into());
            args.push(public.display().to_string());
        }
        args.extend([
            "--root-threshold".into(),
            threshold.to_string(),
            "-o".into(),
            "json".into(),
        ]);
        json(&self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>()))
    }

    /// `tagtrust root sign GUN --key KEY --staged FILE -o json`: a holder
    /// signs a staged-root file handed to them.
    pub fn root_sign(&self, gun: &str, key: &Path, staged: &Path) -> serde_json::Value {
        let (key, staged) = (utf8(key), utf8(staged));
        json(&self.ok(&[
            "root", "sign", gun, "--key", key, "--staged", staged, "-o", "json",
        ]))
    }

    /// `tagtrust root sign GUN --key KEY --staged FILE`, which must fail;
    /// its stderr.
    pub fn root_sign_refused(&self, gun: &str, key: &Path, staged: &Path) -> String {
        let (key, staged) = (utf8(key), utf8(staged));
        self.fails(&["root", "sign", gun, "--key", key, "--staged", staged])
    }

    /// `tagtrust root publish GUN --staged FILE -o json`, which must succeed.
    pub fn root_publish(&self, gun: &str, staged: &Path) -> serde_json::Value {
        let staged = utf8(staged);
        json(&self.ok(&["root", "publish", gun, "--staged", staged, "-o", "json"]))
    }

    /// Directory of the trusted metadata this user keeps for `gun` on `server`.
    pub fn trusted_dir(&self, server: &TestServer, gun: &str) -> PathBuf {
        tagtrust::home::Home::at(self.home.path()).metadata_dir(
            &server.url,
            &tagtrust_shared::Gun::parse(gun).expect("a valid GUN"),
        )
    }

    /// Run with `args` with the clock moved by `offset` (faketime syntax,
    /// e.g. "+2d"); returns the output whatever the exit status.
    pub fn run_at(&self, offset: &str, args: &[&str]) -> Output {
        Command::new("faketime")
            .args(["-f", offset])
            .arg(bin_path("tagtrust"))
            .args(args)
            .envs(self.command().get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null())
            .output()
            .expect("faketime is installed (.ci/run installs it)")
    }
}

impl TestServer {
    /// GET `{tuf_url(gun)}{file}` and return the body (any status).
    pub fn fetch(&self, gun: &str, file: &str) -> Vec<u8> {
        reqwest::blocking::get(format!("{}{file}", self.tuf_url(gun)))
            .expect("GET metadata")
            .bytes()
            .expect("body")
            .to_vec()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The snapshot's version of every role (file name -> version), read from
/// `server`.
pub fn snapshot_versions(
    server: &TestServer,
    gun: &str,
) -> std::collections::BTreeMap<String, u64> {
    let snapshot = parse_json(&server.fetch(gun, "snapshot.json"));
    snapshot["signed"]["meta"]
        .as_object()
        .expect("snapshot meta")
        .iter()
        .map(|(file, meta)| (file.clone(), meta["version"].as_u64().expect("a version")))
        .collect()
}

/// Parse metadata bytes as JSON (they must be).
pub fn parse_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("metadata is JSON")
}

/// A number from the environment variable `name` (a load test's size or
/// seed, to replay a run), or `default` when it is unset or empty.
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        _ => default,
    }
}

/// A random test's seed: `$var` if set (to replay a run), else a fresh
/// one. Says on stderr what the run is (`about`) and how to replay it.
pub fn seed(var: &str, about: &str) -> u64 {
    let seed = env_number(var, rand::random());
    eprintln!("{about}, seed {seed} ({var} to replay)");
    seed
}

/// The timestamp re-signs the servers at `bases` count, in all (a server
/// that has not re-signed yet counts 0).
pub fn timestamp_resigns(http: &reqwest::blocking::Client, bases: &[&str]) -> f64 {
    let series = "tagtrust_resigns_total{role=\"timestamp\"}";
    bases
        .iter()
        .map(|base| metric(&metrics(http, base), series).unwrap_or(0.0))
        .sum()
}

/// Panic, showing `text`, unless it contains `part`.
#[track_caller]
pub fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "no {part:?} in: {text}");
}

/// The text of `GET {base}/metrics` (Prometheus exposition format).
pub fn metrics(http: &reqwest::blocking::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET {base}/metrics: {e}"))
}

/// Poll `done` every 50 ms for up to 5 s; panic naming `what` if it never holds.
pub fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    for _ in 0..100 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The value of the sample `series` (name and labels, exactly) in a
/// metrics text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().expect("a number"))
}

/// The digest (`sha256:HEX`) that `targets` (a parsed targets JSON
/// document) signs for `tag`, if it lists the tag.
pub fn signed_digest(targets: &serde_json::Value, tag: &str) -> Option<String> {
    targets["signed"]["targets"][tag]["hashes"]["sha256"]
        .as_str()
        .map(|h| format!("sha256:{h}"))
}

/// The `meta` entry (version, length, sha256) for `file` in a snapshot or
/// timestamp (as parsed JSON).
pub fn meta_entry(md: &serde_json::Value, file: &str) -> (u64, u64, String) {
    let entry = &md["signed"]["meta"][file];
    (
        entry["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("no {file} in {md}")),
        entry["length"].as_u64().expect("length"),
        entry["hashes"]["sha256"]
            .as_str()
            .expect("sha256")
            .to_string(),
    )
}

/// Parse CLI output as JSON, failing the test with the output if it is not.
pub fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A random `sha256:` digest and size, as a stand-in manifest.
pub fn random_digest() -> (String, u64) {
    let bytes: [u8; 32] = rand::random();
    (
        format!("sha256:{}", hex::encode(bytes)),
        500 + u64::from(bytes[0]),
    )
}

/// The python interpreter of the virtualenv with python-tuf, from
/// `TAGTRUST_TEST_PYTHON` (set by scripts/test.sh). Missing: `None` with a
/// notice, except under `CI=true`, where that is a failure.
pub fn python_with_tuf() -> Option<PathBuf> {
    optional_setting("TAGTRUST_TEST_PYTHON", "python-tuf interop").map(PathBuf::from)
}

/// Directory of the test crate (for scripts under tests/python).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Resolve `target` with python-tuf's ngclient (tests/python/ngclient_lookup.py)
/// from the TUF metadata at `metadata_url`, bootstrapped from the root file
/// `root`. Asserts that ngclient accepts the repository (`what` names it in
/// the failure) and returns its answer, `{"length": N, "sha256": HEX}`.
pub fn ngclient_lookup(
    python: &Path,
    metadata_url: &str,
    root: &Path,
    target: &str,
    what: &str,
) -> serde_json::Value {
    let out = ngclient_run(python, metadata_url, root, target);
    assert!(
        out.status.success(),
        "ngclient refused {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run tests/python/ngclient_lookup.py for `target` (as [`ngclient_lookup`]
/// does) and return its output whatever the exit status: non-zero with
/// `target … not found` on stderr when ngclient finds no such target.
pub fn ngclient_run(python: &Path, metadata_url: &str, root: &Path, target: &str) -> Output {
    let md = tempfile::tempdir().unwrap();
    Command::new(python)
        .arg(tests_dir().join("python/ngclient_lookup.py"))
        .arg(metadata_url)
        .arg(root)
        .arg(md.path())
        .arg(target)
        .output()
        .unwrap()
}

/// Every target tough's `RepositoryLoader` finds in the TUF repository at
/// `metadata_url` (top-level targets and every delegated role it loads),
/// starting from the trusted root `root_bytes`: name -> (length, sha256 hex).
/// tough never re-reads a stored root: the caller passes the trusted root.
pub fn tough_targets(
    root_bytes: &[u8],
    metadata_url: &str,
) -> std::collections::BTreeMap<String, (u64, String)> {
    let base = url::Url::parse(metadata_url).unwrap();
    let datastore = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let repo = rt
        .block_on(
            tough::RepositoryLoader::new(&root_bytes, base.clone(), base)
                .datastore(datastore.path())
                .load(),
        )
        .expect("tough loads the repository");
    repo.all_targets()
        .map(|(name, target)| {
            let sha256 = hex::encode(&target.hashes.sha256);
            (name.raw().to_string(), (target.length, sha256))
        })
        .collect()
}

/// `tagtrust-tuf-client --metadata-dir MD ARGS…` (the TUF conformance
/// client); its output.
pub fn tuf_client<S: AsRef<std::ffi::OsStr>>(metadata_dir: &Path, args: &[S]) -> Output {
    Command::new(bin_path("tagtrust-tuf-client"))
        .arg("--metadata-dir")
        .arg(metadata_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tagtrust-tuf-client")
}

/// Server arguments for expiry tests: timestamps live 3 s, snapshots 6 s,
/// the scheduler looks every second.
pub const SHORT_EXPIRY: [&str; 6] = [
    "--timestamp-expiry-secs",
    "3",
    "--snapshot-expiry-secs",
    "6",
    "--resign-interval-secs",
    "1",
];

// ---------------------------------------------------------------------------
// Shared fixtures: metadata building, HTTP, CLI flows.

pub use tagtrust_simulator::{
    delegated_role, delegations, dup, json_files, sign, target_file, target_of, terminating_role,
    RepositorySimulator,
};

/// An image-manifest target entry for `digest` (`sha256:HEX`) of `size`
/// bytes, as `tagtrust tag set` writes it (the default media type left
/// implicit: length and sha256 only).
pub fn manifest_target(digest: &str, size: u64) -> tagtrust_shared::TargetFile {
    target_of(
        size,
        digest.strip_prefix("sha256:").expect("a sha256: digest"),
    )
}

/// An HTTP client for talking to a test server directly, with a timeout
/// long enough for a slow CI machine.
pub fn http() -> reqwest::blocking::Client {
    http_with_timeout(Duration::from_secs(60))
}

/// An HTTP client with this timeout. It does not ask for gzip (the tagtrust
/// client does): tests read the exact stored bytes and their entity tags,
/// and ask for gzip themselves where they test it.
pub fn http_with_timeout(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .no_gzip()
        .build()
        .expect("an HTTP client")
}

/// A multipart publish body: one `files` part per `(filename, bytes)`.
pub fn files_form(files: &[(&str, Vec<u8>)]) -> reqwest::blocking::multipart::Form {
    use reqwest::blocking::multipart::{Form, Part};
    files.iter().fold(Form::new(), |form, (name, bytes)| {
        form.part(
            "files",
            Part::bytes(bytes.clone()).file_name(name.to_string()),
        )
    })
}

/// Standard base64 with padding (the server's master key form), without a
/// dependency.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A finished process's stderr, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Require a process to have succeeded (failing with its stderr); returns
/// its stdout.
pub fn succeeded(out: &Output) -> String {
    ran_ok("the process", out)
}

/// Require `what` (its output `out`) to have succeeded, failing with both
/// of its streams; returns its stdout.
pub fn ran_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cli {
    /// A publisher with a token for `scope` that ran `tagtrust init GUN`;
    /// returns it and the token.
    pub fn publisher(server: &TestServer, scope: &str, gun: &str) -> (Cli, String) {
        let token = server.create_token(&[scope]);
        let cli = Cli::new(&server.url).with_token(&token);
        cli.ok(&["init", gun]);
        (cli, token)
    }

    /// `tagtrust tag set GUN:TAG DIGEST --size N ARGS…` for a fresh random
    /// digest; returns the output whatever the exit status, and the digest.
    pub fn tag_set_with(&self, gun: &str, tag: &str, args: &[&str]) -> (Output, String) {
        let (digest, size) = random_digest();
        (self.tag_set_digest(gun, tag, &digest, size, args), digest)
    }

    /// `tagtrust tag set GUN:TAG DIGEST --size SIZE ARGS…`; the output
    /// whatever the exit status.
    pub fn tag_set_digest(
        &self,
        gun: &str,
        tag: &str,
        digest: &str,
        size: u64,
        args: &[&str],
    ) -> Output {
        let size = size.to_string();
        let reference = format!("{gun}:{tag}");
        let mut all = vec!["tag", "set", &reference, digest, "--size", &size];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Sign and publish `gun:tag` -> a fresh random digest; returns the digest.
    pub fn tag_set(&self, gun: &str, tag: &str) -> String {
        let (out, digest) = self.tag_set_with(gun, tag, &[]);
        succeeded(&out);
        digest
    }

    /// `tag set` as the delegated `role` with its key file; must succeed.
    pub fn tag_set_as(&self, gun: &str, tag: &str, role: &str, key: &Path) -> String {
        let key = key.to_str().expect("a UTF-8 path");
        let (out, digest) = self.tag_set_with(gun, tag, &["--role", role, "--key", key]);
        succeeded(&out);
        digest
    }

    /// `tagtrust lookup GUN:TAG`, which must succeed; the digest it prints.
    pub fn lookup(&self, gun: &str, tag: &str) -> String {
        self.ok(&["lookup", &format!("{gun}:{tag}")])
            .trim()
            .to_string()
    }

    /// The tags `tagtrust list GUN -o json` lists, in its order.
    pub fn tag_names(&self, gun: &str) -> Vec<String> {
        json(&self.ok(&["list", gun, "-o", "json"]))
            .as_array()
            .expect("a list")
            .iter()
            .map(|t| t["tag"].as_str().expect("a tag").to_string())
            .collect()
    }

    /// `tagtrust lookup GUN:TAG --root FILE` (trust pinned to a root file).
    pub fn lookup_pinned(&self, reference: &str, root: &Path) -> Output {
        self.command()
            .args(["lookup", reference, "--root"])
            .arg(root)
            .output()
            .expect("run tagtrust")
    }
}

/// A path as a command-line argument.
fn utf8(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// A server on `backend` with `gun` initialised: the server, a publisher
/// holding a `scope` token that ran `tagtrust init GUN`, and the token.
pub fn initialised(backend: Backend, scope: &str, gun: &str) -> (TestServer, Cli, String) {
    let server = TestServer::spawn(backend);
    let (publisher, token) = Cli::publisher(&server, scope, gun);
    (server, publisher, token)
}

/// A server with a published repository: `gun` initialised by a publisher
/// holding a `push:*` token, and `latest` pointing at `digest`.
pub struct Published {
    pub server: TestServer,
    pub publisher: Cli,
    pub token: String,
    pub gun: String,
    pub digest: String,
}

impl Published {
    pub fn spawn(backend: Backend, gun: &str) -> Published {
        Self::spawn_with(backend, gun, &[])
    }

    /// As [`Published::spawn`], the server started with `server_args`.
    pub fn spawn_with(backend: Backend, gun: &str, server_args: &[&str]) -> Published {
        let server = TestServer::spawn_with(backend, server_args);
        let (publisher, token) = Cli::publisher(&server, "push:*", gun);
        let digest = publisher.tag_set(gun, "latest");
        Published {
            server,
            publisher,
            token,
            gun: gun.to_string(),
            digest,
        }
    }

    /// A consumer with a home of its own on this server.
    pub fn consumer(&self) -> Cli {
        Cli::new(&self.server.url)
    }
}

impl Cli {
    /// `robot` makes a key pair for `role` and hands the public half over;
    /// this publisher delegates `path` of `gun` to it. Returns the robot's
    /// (encrypted) private key file; the public PEM is at
    /// `{this home}/{role}.pub.pem`.
    pub fn delegate_to(&self, robot: &Cli, gun: &str, role: &str, path: &str) -> PathBuf {
        let key_file = robot.home.path().join(format!("{role}.pem"));
        let public_pem = robot.ok(&[
            "key",
            "generate",
            role,
            "--out",
            key_file.to_str().expect("a UTF-8 path"),
        ]);
        let public_file = self.home.path().join(format!("{role}.pub.pem"));
        std::fs::write(&public_file, public_pem).expect("write the public key");
        self.ok(&[
            "delegation",
            "add",
            gun,
            role,
            "--key",
            public_file.to_str().expect("a UTF-8 path"),
            "--path",
            path,
        ]);
        key_file
    }
}
