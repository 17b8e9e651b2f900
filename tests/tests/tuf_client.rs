//! `tagtrust-tuf-client` against a repository python-tuf's Metadata API
//! generated (tests/python/make_python_tuf_repo.py): a root rotation, a
//! delegation with path patterns, consistent snapshots, hash-prefixed
//! artifacts. Served by python's `http.server`; the real binary is run
//! once per step, as TUF client test suites do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tagtrust_tests::{
    bin_path, free_port, json_files, python_with_tuf, serve, stderr, succeeded, tests_dir,
    KillOnDrop,
};

const TOP: (&str, &[u8]) = ("readme.txt", b"hello from python-tuf top-level targets\n");
const DELEGATED: (&str, &[u8]) = (
    "apps/app.bin",
    b"\x00\x01binary artifact signed by dev+ops\xff\n",
);

/// `python -m http.server` on a free loopback port, killed on drop.
struct StaticServer {
    url: String,
    _process: KillOnDrop,
}

impl StaticServer {
    fn start(python: &Path, dir: &Path) -> StaticServer {
        let port = free_port();
        let mut server = Command::new(python);
        server
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stderr(Stdio::null());
        let (url, process) = serve(server, port, "", "python http.server", String::new);
        StaticServer {
            url,
            _process: process,
        }
    }
}

/// A generated repository, served, plus a client metadata directory.
struct Fixture {
    dir: tempfile::TempDir,
    server: StaticServer,
}

impl Fixture {
    /// `None` (with a notice) when no python-tuf virtualenv is configured.
    fn new() -> Option<Fixture> {
        let python = python_with_tuf()?;
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(&python)
            .arg(tests_dir().join("python/make_python_tuf_repo.py"))
            .arg(dir.path())
            .output()
            .expect("run make_python_tuf_repo.py");
        succeeded(&out);
        let server = StaticServer::start(&python, &dir.path().join("repo"));
        Some(Fixture { dir, server })
    }

    fn metadata(&self, file: &str) -> PathBuf {
        self.dir.path().join("repo/metadata").join(file)
    }

    fn read_metadata(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.metadata(file)).unwrap()
    }

    fn metadata_url(&self) -> String {
        format!("{}/metadata/", self.server.url)
    }

    fn targets_url(&self) -> String {
        format!("{}/targets/", self.server.url)
    }

    /// A fresh client metadata directory initialised with root v1.
    fn client(&self) -> Client {
        let client = Client {
            md: tempfile::tempdir().unwrap(),
            metadata_url: self.metadata_url(),
            targets_url: self.targets_url(),
        };
        let root = self.dir.path().join("trusted-root.json");
        let out = client.run(&["init".as_ref(), root.as_os_str()]);
        assert_eq!(out.status.code(), Some(0), "init: {}", stderr(&out));
        client
    }
}

struct Client {
    md: tempfile::TempDir,
    metadata_url: String,
    targets_url: String,
}

impl Client {
    fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        tagtrust_tests::tuf_client(self.md.path(), args)
    }

    fn refresh(&self) -> Output {
        self.run(&["--metadata-url", &self.metadata_url, "refresh"])
    }

    fn download(&self, target_dir: &Path, names: &[&str]) -> Output {
        let mut args = vec!["--metadata-url".to_string(), self.metadata_url.clone()];
        for name in names {
            args.push("--target-name".into());
            args.push(name.to_string());
        }
        args.push("--target-dir".into());
        args.push(target_dir.display().to_string());
        args.push("--target-base-url".into());
        args.push(self.targets_url.clone());
        args.push("download".into());
        self.run(&args)
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.md.path().join(name)).unwrap_or_else(|e| panic!("MD/{name}: {e}"))
    }

    fn json_files(&self) -> Vec<String> {
        json_files(self.md.path())
    }
}

/// Every file below `dir`, as names relative to it, sorted.
fn names_below(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = tagtrust_tests::database::files_under(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

/// Exit status 1 with `says` in stderr.
fn assert_refused(out: &Output, what: &str, says: &str) {
    assert_exit(out, 1, what);
    assert!(stderr(out).contains(says), "{what}: {}", stderr(out));
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit status {:?}\nstderr: {}",
        out.status,
        stderr(out)
    );
}

#[test]
fn refreshes_and_downloads_from_a_python_tuf_repository() {
    let Some(fx) = Fixture::new() else { return };
    let client = fx.client();
    assert_eq!(
        client.json_files(),
        ["root.json"],
        "init makes no request and writes only root.json"
    );

    assert_exit(&client.refresh(), 0, "refresh");
    // Root rotated to v2; every file is the exact bytes served; the delegated
    // roles are not fetched until a target search needs them.
    assert_eq!(client.file("root.json"), fx.read_metadata("2.root.json"));
    assert_eq!(
        client.file("timestamp.json"),
        fx.read_metadata("timestamp.json")
    );
    assert_eq!(
        client.file("snapshot.json"),
        fx.read_metadata("1.snapshot.json")
    );
    assert_eq!(
        client.file("targets.json"),
        fx.read_metadata("1.targets.json")
    );
    assert_eq!(
        client.json_files(),
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );

    let td = tempfile::tempdir().unwrap();
    let out = client.download(td.path(), &[TOP.0, DELEGATED.0]);
    assert_exit(&out, 0, "download");
    assert_eq!(std::fs::read(td.path().join(TOP.0)).unwrap(), TOP.1);
    assert_eq!(
        std::fs::read(td.path().join(DELEGATED.0)).unwrap(),
        DELEGATED.1
    );
    assert_eq!(names_below(td.path()), ["apps/app.bin", "readme.txt"]);
    // The delegated role is stored percent-encoded like python's quote(name, safe="");
    // "unvisited" (paths other/*) was never fetched: the repository does not even have it.
    assert_eq!(
        client.file("dev%2Bops.json"),
        fx.read_metadata("1.dev+ops.json")
    );
    assert_eq!(
        client.json_files(),
        [
            "dev%2Bops.json",
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );

    // Cached artifacts are kept, not downloaded again: remove them from the
    // server and download once more.
    let served = fx.dir.path().join("repo/targets");
    std::fs::rename(&served, fx.dir.path().join("targets-moved")).unwrap();
    assert_exit(
        &client.download(td.path(), &[TOP.0, DELEGATED.0]),
        0,
        "cached download",
    );
    std::fs::rename(fx.dir.path().join("targets-moved"), &served).unwrap();

    // A target nobody signed: failure, exit 1.
    let out = client.download(td.path(), &["nothing/here"]);
    assert_refused(
        &out,
        "unknown target",
        "not in the trusted targets metadata",
    );
    // other/* is delegated to "unvisited": now the search does visit it, and
    // fails because the repository lacks its metadata.
    let out = client.download(td.path(), &["other/x"]);
    assert_refused(
        &out,
        "target in a missing role",
        "1.unvisited.json: not found",
    );
}

#[test]
fn tampered_target_is_refused_and_not_written() {
    let Some(fx) = Fixture::new() else { return };
    let client = fx.client();
    let dir = fx.dir.path().join("repo/targets/apps");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[5] ^= 0x20; // same length, different content
    std::fs::write(&file, &bytes).unwrap();

    let td = tempfile::tempdir().unwrap();
    let out = client.download(td.path(), &[DELEGATED.0]);
    assert_refused(&out, "tampered target", "arbitrary software attack refused");
    assert!(
        names_below(td.path()).is_empty(),
        "nothing written: {:?}",
        names_below(td.path())
    );
}

#[test]
fn tampered_metadata_is_refused() {
    let Some(fx) = Fixture::new() else { return };

    // A delegated role changed after signing (its snapshot entry has no
    // hashes, so the signature is what catches it).
    let path = fx.metadata("1.dev+ops.json");
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let forged = text.replace("\"length\": 37", "\"length\": 38");
    assert_ne!(forged, text, "fixture changed: no length 37 in {text}");
    std::fs::write(&path, forged).unwrap();
    let client = fx.client();
    let td = tempfile::tempdir().unwrap();
    let out = client.download(td.path(), &[DELEGATED.0]);
    assert_refused(&out, "forged delegated role", "arbitrary metadata refused");
    assert!(!client.md.path().join("dev%2Bops.json").exists());
    // The rest of the repository is still usable.
    assert_exit(&client.download(td.path(), &[TOP.0]), 0, "top-level target");
    assert_eq!(names_below(td.path()), ["readme.txt"]);

    // A timestamp changed after signing, seen by a new client.
    let ts = fx.metadata("timestamp.json");
    let text = String::from_utf8(std::fs::read(&ts).unwrap()).unwrap();
    std::fs::write(&ts, text.replace("\"version\": 2", "\"version\": 7")).unwrap();
    let client = fx.client();
    let out = client.refresh();
    assert_refused(
        &out,
        "forged timestamp",
        "arbitrary metadata refused: timestamp",
    );
    assert!(!client.md.path().join("timestamp.json").exists());
}

#[test]
fn rollback_and_freeze_are_refused() {
    let Some(fx) = Fixture::new() else { return };
    let client = fx.client();
    assert_exit(&client.refresh(), 0, "refresh");
    let trusted_ts = client.file("timestamp.json");
    // A man in the middle serves an attack timestamp: refused, trusted
    // state unchanged.
    let served = |attack: &str, what: &str, says: &str| {
        let attack = fx.dir.path().join(format!("attack/{attack}"));
        std::fs::copy(attack, fx.metadata("timestamp.json")).unwrap();
        assert_refused(&client.refresh(), what, says);
        assert_eq!(client.file("timestamp.json"), trusted_ts, "{what}");
    };
    served(
        "timestamp-v1.json",
        "rollback",
        "rollback attack refused: timestamp version 1 is older than trusted version 2",
    );
    served(
        "timestamp-expired.json",
        "freeze",
        "freeze attack refused: timestamp expired at",
    );
}

#[test]
fn every_failure_exits_1() {
    let md = tempfile::tempdir().unwrap();
    let bin = bin_path("tagtrust-tuf-client");
    let run = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tagtrust-tuf-client")
    };
    let md_arg = md.path().to_str().unwrap();
    for (args, what) in [
        (vec![], "no arguments"),
        (vec!["--metadata-dir", md_arg], "no subcommand"),
        (
            vec!["--metadata-dir", md_arg, "--bogus", "refresh"],
            "unknown option",
        ),
        (
            vec!["--metadata-dir", md_arg, "refresh"],
            "refresh without --metadata-url",
        ),
        (
            vec![
                "--metadata-dir",
                md_arg,
                "--metadata-url",
                "http://127.0.0.1:9/",
                "refresh",
            ],
            "no trusted root",
        ),
        (
            vec!["--metadata-dir", md_arg, "init", "/nonexistent/root.json"],
            "init with a missing file",
        ),
    ] {
        let out = run(&args);
        assert_exit(&out, 1, what);
    }
    let junk = md.path().join("junk.json");
    std::fs::write(&junk, b"{\"signed\": {}}").unwrap();
    let out = run(&["--metadata-dir", md_arg, "init", junk.to_str().unwrap()]);
    assert_exit(&out, 1, "init with junk");
    assert!(!md.path().join("root.json").exists());
    assert_exit(&run(&["--help"]), 0, "--help");
}
