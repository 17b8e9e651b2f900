//! Air-gapped export (issue 9): `tagtrust export GUN --to DIR` writes a
//! static TUF layout that Debian's nginx serves and that `tagtrust lookup`,
//! `tagtrust-tuf-client` and python-tuf's ngclient resolve tags from;
//! `tagtrust-server import` loads it (a directory or a tar) into a second
//! server after verifying it, and refuses a tampered export storing nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tagtrust_shared::export::{Manifest, MANIFEST_FILE};
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_tests::{
    bin_path, free_port, json, ngclient_lookup, parse_json, python_with_tuf, serve, stderr,
    succeeded, Backend, Cli, KillOnDrop, Published, TestServer,
};

const GUN: &str = "registry.example.com/acme/exported";

/// A published GUN with a delegation and two tag changes, and what its
/// consumers should resolve.
struct Fixture {
    upstream: Published,
    /// The publisher's trusted root file, to pin consumers with.
    root: PathBuf,
    /// The manifest bytes `latest` now points at (so a TUF client can
    /// download and check them).
    latest: Vec<u8>,
    latest_digest: String,
    /// `release-1`, signed by the delegated role `releases`.
    release_digest: String,
}

impl Fixture {
    fn new() -> Fixture {
        let upstream = Published::spawn(Backend::Sqlite, GUN);
        let publisher = &upstream.publisher;
        let robot = Cli::new(&upstream.server.url).with_token(&upstream.token);
        let key = publisher.delegate_to(&robot, GUN, "releases", "release-*");
        let release_digest = robot.tag_set_as(GUN, "release-1", "releases", &key);
        let latest =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
                .to_vec();
        let latest_digest = format!("sha256:{}", sha256_hex(&latest));
        succeeded(&publisher.tag_set_digest(
            GUN,
            "latest",
            &latest_digest,
            latest.len() as u64,
            &[],
        ));
        let root = publisher
            .trusted_dir(&upstream.server, GUN)
            .join("root.json");
        Fixture {
            upstream,
            root,
            latest,
            latest_digest,
            release_digest,
        }
    }

    /// `tagtrust export GUN --to TO -o json` by a user holding no key.
    fn export(&self, to: &Path) -> serde_json::Value {
        let cli = Cli::new(&self.upstream.server.url);
        json(&cli.ok(&["export", GUN, "--to", to.to_str().unwrap(), "-o", "json"]))
    }

    /// `tagtrust lookup GUN:TAG --root FILE` against `url`; the digest.
    fn lookup(&self, url: &str, tag: &str) -> String {
        let out = Cli::new(url).lookup_pinned(&format!("{GUN}:{tag}"), &self.root);
        succeeded(&out).trim().to_string()
    }
}

fn read_manifest(dir: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap()
}

/// Debian's nginx serving `root` (and `/targets/` from `targets`) on a free
/// loopback port, everything it writes in a temporary directory; killed
/// when dropped.
struct Nginx {
    url: String,
    _process: KillOnDrop,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn serve(root: &Path, targets: &Path) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let port = free_port();
        // One process (no master, no workers switching user), so it reads
        // the test's private temporary directories as the test's user.
        let config = format!(
            "master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /targets/ {{ alias {targets}/; }}
    }}
}}
",
            root = root.display(),
            targets = targets.display(),
        );
        let config_file = dir.path().join("nginx.conf");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.path().join("error.log");
        let mut nginx = Command::new("/usr/sbin/nginx");
        nginx
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_file)
            .arg("-e")
            .arg(&log)
            .args(["-g", "daemon off;"])
            .stderr(Stdio::inherit());
        let (url, process) = serve(
            nginx,
            port,
            &format!("/{MANIFEST_FILE}"),
            "/usr/sbin/nginx (.ci/run installs it)",
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        Nginx {
            url,
            _process: process,
            _dir: dir,
        }
    }

    fn metadata_url(&self) -> String {
        format!("{}/v2/{GUN}/_trust/tuf/", self.url)
    }
}

/// `tagtrust-server import SOURCE` on `server`'s storage (stopped first,
/// started again after); the output.
fn import(server: &mut TestServer, source: &Path) -> Output {
    server.stop();
    let out = Command::new(bin_path("tagtrust-server"))
        .args(server.storage_args())
        .arg("import")
        .arg(source)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run tagtrust-server import");
    server.start();
    out
}

/// The importing server: PostgreSQL when the tests have it, else SQLite.
fn second_server() -> TestServer {
    TestServer::spawn(*Backend::all().last().expect("a backend"))
}

#[test]
fn an_export_served_by_nginx_resolves_with_tagtrust_tuf_client_and_python_tuf() {
    let fixture = Fixture::new();
    let server = &fixture.upstream.server;
    let export = tempfile::tempdir().unwrap();
    let report = fixture.export(export.path());
    assert_eq!(report["guns"][0]["gun"], GUN, "{report}");

    // The manifest lists every file with its checksum; each is the
    // server's own bytes; no key material is anywhere in it.
    let manifest = read_manifest(export.path());
    assert_eq!(manifest.upstream, server.url);
    assert_eq!(manifest.guns.len(), 1);
    let files = &manifest.guns[0].files;
    for name in [
        "1.root.json",
        "root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "1.releases.json",
        "releases.json",
        "3.targets.json",
    ] {
        let path = format!("v2/{GUN}/_trust/tuf/{name}");
        let file = files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path} in the manifest"));
        let bytes = std::fs::read(export.path().join(&path)).unwrap();
        assert_eq!(
            (file.sha256.clone(), file.length),
            (sha256_hex(&bytes), bytes.len() as u64)
        );
        if name.starts_with(|c: char| c.is_ascii_digit()) || name == "root.json" {
            assert_eq!(bytes, server.fetch(GUN, name), "{name}");
        }
    }
    for file in files {
        let text = std::fs::read_to_string(export.path().join(&file.path)).unwrap();
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("seed"),
            "{}",
            file.path
        );
    }

    // The target `latest` points at, where a TUF client downloads it
    // (consistent snapshot: hash-prefixed).
    let targets = tempfile::tempdir().unwrap();
    let hex = fixture.latest_digest.strip_prefix("sha256:").unwrap();
    std::fs::write(
        targets.path().join(format!("{hex}.latest")),
        &fixture.latest,
    )
    .unwrap();
    let nginx = Nginx::serve(export.path(), targets.path());

    // tagtrust lookup, pinned to the upstream's root, through nginx.
    assert_eq!(fixture.lookup(&nginx.url, "latest"), fixture.latest_digest);
    assert_eq!(
        fixture.lookup(&nginx.url, "release-1"),
        fixture.release_digest
    );

    // The conformance CLI: init with the root, download `latest`, bytes checked.
    let md = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let tuf_client = |args: &[&str]| {
        Command::new(bin_path("tagtrust-tuf-client"))
            .arg("--metadata-dir")
            .arg(md.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tagtrust-tuf-client")
    };
    succeeded(&tuf_client(&["init", fixture.root.to_str().unwrap()]));
    let out = tuf_client(&[
        "--metadata-url",
        &nginx.metadata_url(),
        "--target-name",
        "latest",
        "--target-dir",
        downloads.path().to_str().unwrap(),
        "--target-base-url",
        &format!("{}/targets/", nginx.url),
        "download",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "tagtrust-tuf-client: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(downloads.path().join("latest")).unwrap(),
        fixture.latest
    );

    // python-tuf's ngclient, through the delegation too.
    let Some(python) = python_with_tuf() else {
        return;
    };
    for (tag, digest) in [
        ("latest", &fixture.latest_digest),
        ("release-1", &fixture.release_digest),
    ] {
        let theirs = ngclient_lookup(
            &python,
            &nginx.metadata_url(),
            &fixture.root,
            tag,
            "the export",
        );
        assert_eq!(
            format!("sha256:{}", theirs["sha256"].as_str().unwrap()),
            *digest
        );
    }
}

#[test]
fn an_export_imports_into_a_second_server_from_a_directory_or_a_tar() {
    let fixture = Fixture::new();
    let export = tempfile::tempdir().unwrap();
    fixture.export(export.path());
    let tar = export.path().join("export.tar");
    let dir = export.path().join("dir");
    fixture.export(&dir);
    fixture.export(&tar);

    let mut mirror = second_server();
    let out = import(&mut mirror, &dir);
    let stdout = succeeded(&out);
    assert!(stdout.starts_with(&format!("imported {GUN}: ")), "{stdout}");
    assert_eq!(fixture.lookup(&mirror.url, "latest"), fixture.latest_digest);
    assert_eq!(
        fixture.lookup(&mirror.url, "release-1"),
        fixture.release_digest
    );
    // Stored byte for byte.
    let upstream = &fixture.upstream.server;
    for name in ["1.root.json", "3.targets.json", "1.releases.json"] {
        assert_eq!(mirror.fetch(GUN, name), upstream.fetch(GUN, name), "{name}");
    }
    // The same export again: nothing new.
    let again = succeeded(&import(&mut mirror, &tar));
    assert!(again.starts_with(&format!("up to date {GUN}")), "{again}");

    // A tar into a server that holds nothing yet.
    let mut other = TestServer::spawn(Backend::Sqlite);
    let stdout = succeeded(&import(&mut other, &tar));
    assert!(stdout.starts_with(&format!("imported {GUN}: ")), "{stdout}");
    assert_eq!(fixture.lookup(&other.url, "latest"), fixture.latest_digest);
}

#[test]
fn a_tampered_export_is_refused_at_import_with_nothing_stored() {
    let fixture = Fixture::new();
    let hex = fixture.latest_digest.strip_prefix("sha256:").unwrap();
    let mut mirror = second_server();
    for update_manifest in [true, false] {
        let export = tempfile::tempdir().unwrap();
        fixture.export(export.path());
        // One byte of the newest targets version: the digest `latest` names.
        let dir = format!("v2/{GUN}/_trust/tuf/");
        let current =
            parse_json(&std::fs::read(export.path().join(&dir).join("targets.json")).unwrap());
        let path = format!("{dir}{}.targets.json", current["signed"]["version"]);
        let file = export.path().join(&path);
        let text = std::fs::read_to_string(&file).unwrap();
        let at = text.find(hex).expect("targets names the digest");
        let changed = if &text[at..=at] == "0" { "1" } else { "0" };
        let tampered = format!("{}{changed}{}", &text[..at], &text[at + 1..]);
        std::fs::write(&file, &tampered).unwrap();
        if update_manifest {
            let mut manifest = read_manifest(export.path());
            let entry = manifest.guns[0]
                .files
                .iter_mut()
                .find(|f| f.path == path)
                .unwrap();
            entry.sha256 = sha256_hex(tampered.as_bytes());
            std::fs::write(
                export.path().join(MANIFEST_FILE),
                serde_json::to_vec(&manifest).unwrap(),
            )
            .unwrap();
        }

        let out = import(&mut mirror, export.path());
        assert!(!out.status.success(), "a tampered export was imported");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("refused")).collect();
        assert_eq!(lines.len(), 2, "one reason and the summary: {err}");
        assert!(
            lines[0].starts_with(&format!("tagtrust-server: refused {GUN}: ")),
            "{err}"
        );
        let reason = if update_manifest {
            "targets.json"
        } else {
            "not the file the manifest lists"
        };
        assert!(lines[0].contains(reason), "{err}");
        for name in ["timestamp.json", "root.json", "1.root.json"] {
            let status = reqwest::blocking::get(format!("{}{name}", mirror.tuf_url(GUN)))
                .unwrap()
                .status();
            assert_eq!(status, 404, "{name} was stored ({update_manifest})");
        }
    }
}

#[test]
fn a_binned_repository_is_exported_with_every_bin_and_imports_into_a_second_server() {
    let upstream = Published::spawn(Backend::Sqlite, GUN);
    let publisher = &upstream.publisher;
    publisher.ok(&["bins", "enable", GUN, "--bins", "8"]);
    let digests: Vec<(String, String)> = ["latest", "1.0", "1.1"]
        .iter()
        .map(|tag| (tag.to_string(), publisher.tag_set(GUN, tag)))
        .collect();
    let export = tempfile::tempdir().unwrap();
    let cli = Cli::new(&upstream.server.url);
    cli.ok(&["export", GUN, "--to", export.path().to_str().unwrap()]);
    let exported: Vec<String> = read_manifest(export.path()).guns[0]
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    for bin in 0..8 {
        let suffix = format!(".bins-{bin}.json");
        assert!(
            exported.iter().any(|f| f.ends_with(&suffix)),
            "{suffix}: {exported:?}"
        );
    }
    let mut mirror = second_server();
    succeeded(&import(&mut mirror, export.path()));
    let root = publisher
        .trusted_dir(&upstream.server, GUN)
        .join("root.json");
    for (tag, digest) in &digests {
        let out = Cli::new(&mirror.url).lookup_pinned(&format!("{GUN}:{tag}"), &root);
        assert_eq!(&succeeded(&out).trim().to_string(), digest, "{tag}");
    }
}
