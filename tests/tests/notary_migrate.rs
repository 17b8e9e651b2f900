//! `tagtrust migrate notary` (issue 11, "Convert to spec TUF"): the real
//! `notary` CLI publishes a Notary repository to tagtrust-server (tags, a
//! delegation whose key the publisher holds and one only a delegate
//! holds); the migration verifies it, reads the publisher's own Notary
//! keys and publishes a spec-TUF repository, which python-tuf's ngclient
//! and `tagtrust lookup` resolve to the digests `notary lookup` gives. A
//! wrong passphrase and a tampered Notary repository are refused before
//! anything is published. On SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tagtrust_tests::notary::{self_signed_certificate, Notary};
use tagtrust_tests::proxy::TamperingProxy;
use tagtrust_tests::{http, ngclient_lookup, python_with_tuf, Backend, Cli, TestServer};

const GUN: &str = "example.com/acme/app";
const TUF_GUN: &str = "example.com/acme/app-tuf";
/// What `tests/src/notary.rs` sets every NOTARY_*_PASSPHRASE to.
const NOTARY_PASSPHRASE: &str = "notary test passphrase";

/// `tagtrust migrate notary GUN --trust-dir … --to TUF_GUN` with the Notary
/// passphrases set to `passphrase` (and `--from` if given).
fn migrate(
    cli: &Cli,
    trust_dir: &std::path::Path,
    passphrase: &str,
    from: Option<&str>,
) -> std::process::Output {
    let mut cmd = cli.command();
    cmd.args([
        "migrate", "notary", GUN, "--to", TUF_GUN, "--output", "json",
    ])
    .arg("--trust-dir")
    .arg(trust_dir);
    if let Some(from) = from {
        cmd.args(["--from", from]);
    }
    for role in ["ROOT", "TARGETS", "DELEGATION"] {
        cmd.env(format!("NOTARY_{role}_PASSPHRASE"), passphrase);
    }
    cmd.output().unwrap()
}

fn status(server: &TestServer, gun: &str, file: &str) -> StatusCode {
    http()
        .get(format!("{}{file}", server.tuf_url(gun)))
        .send()
        .unwrap()
        .status()
}

/// A one-line error (the CLI's contract), returned.
fn one_line(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "unexpectedly succeeded");
    let said = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(said.lines().count(), 1, "{said}");
    said
}

#[test]
fn a_notary_repository_becomes_spec_tuf_that_python_tuf_and_tagtrust_resolve() {
    let python = python_with_tuf();
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let push = server.create_token(&["push:example.com/*"]);
        let admin = server.create_token(&["admin:example.com/*"]);
        let publisher = Notary::new(&server.url, &push);
        let owner = publisher.with_password(&admin);
        let delegate = Notary::new(&server.url, &push);
        let work = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = work.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path.to_str().unwrap().to_string()
        };
        let manifests = [
            file("a.json", b"{\"schemaVersion\":2,\"a\":1}"),
            file("b.json", b"{\"schemaVersion\":2,\"b\":22}"),
            file("c.json", b"{\"schemaVersion\":2,\"c\":333}"),
            file("d.json", b"{\"schemaVersion\":2,\"d\":4444}"),
        ];

        // Notary: two top-level tags; the server holds the snapshot key so
        // that the delegate can publish; `targets/releases` to a key the
        // publisher imports (held), `targets/ci` to one only the delegate has.
        publisher.ok(&["init", GUN]);
        publisher.ok(&["add", GUN, "v1", &manifests[0]]);
        publisher.ok(&["add", GUN, "latest", &manifests[1]]);
        publisher.ok(&["publish", GUN]);
        owner.ok(&["key", "rotate", GUN, "snapshot", "-r"]);
        let (held_key, held_cert) = self_signed_certificate(work.path(), "releases");
        let (ci_key, ci_cert) = self_signed_certificate(work.path(), "ci-bot");
        for (role, cert, prefix) in [
            ("targets/releases", &held_cert, "release-"),
            ("targets/ci", &ci_cert, "ci-"),
        ] {
            publisher.ok(&[
                "delegation",
                "add",
                GUN,
                role,
                cert.to_str().unwrap(),
                "--paths",
                prefix,
                "-p",
            ]);
        }
        publisher.ok(&[
            "key",
            "import",
            held_key.to_str().unwrap(),
            "--role",
            "targets/releases",
            "--gun",
            GUN,
        ]);
        publisher.ok(&[
            "add",
            GUN,
            "release-1.0",
            &manifests[2],
            "--roles",
            "targets/releases",
        ]);
        publisher.ok(&["publish", GUN]);
        delegate.ok(&[
            "key",
            "import",
            ci_key.to_str().unwrap(),
            "--role",
            "targets/ci",
            "--gun",
            GUN,
        ]);
        delegate.ok(&["add", GUN, "ci-7", &manifests[3], "--roles", "targets/ci"]);
        delegate.ok(&["publish", GUN]);
        let notary_digest = |tag: &str| -> String {
            let out = publisher.ok(&["lookup", GUN, tag]);
            out.split_whitespace()
                .find_map(|w| w.strip_prefix("sha256:"))
                .unwrap_or_else(|| panic!("notary lookup {tag}: {out}"))
                .to_string()
        };

        let cli = Cli::new(&server.url).with_token(&push);

        // A wrong passphrase: one line, nothing published, nothing kept.
        let said = one_line(&migrate(&cli, publisher.trust_dir(), "wrong", None));
        assert!(said.contains("passphrase"), "{said}");
        assert_eq!(status(&server, TUF_GUN, "root.json"), StatusCode::NOT_FOUND);

        // A tampered Notary repository (another digest for v1 in the
        // targets the server serves): refused before anything is published.
        let proxy = TamperingProxy::start(&server.url);
        let targets = http()
            .get(format!("{}targets.json", server.tuf_url(GUN)))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec();
        let text = String::from_utf8(targets.clone()).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let v1 = parsed["signed"]["targets"]["v1"]["hashes"]["sha256"]
            .as_str()
            .unwrap();
        let forged = text.replace(v1, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        proxy.serve(
            &format!(
                "/v2/{GUN}/_trust/tuf/targets.{}.json",
                hex::encode(Sha256::digest(&targets))
            ),
            200,
            forged.into_bytes(),
        );
        let said = one_line(&migrate(
            &cli,
            publisher.trust_dir(),
            NOTARY_PASSPHRASE,
            Some(&proxy.url),
        ));
        assert!(said.contains("does not verify"), "{said}");
        assert_eq!(status(&server, TUF_GUN, "root.json"), StatusCode::NOT_FOUND);

        // The migration.
        let out = migrate(&cli, publisher.trust_dir(), NOTARY_PASSPHRASE, None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let roles: Vec<(&str, &str, bool)> = report["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["notary"].as_str().unwrap(),
                    r["role"].as_str().unwrap(),
                    r["signed"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            roles,
            [
                ("targets", "targets", true),
                ("targets/releases", "releases", true),
                ("targets/ci", "ci", false),
            ]
        );

        // The new root lists the publisher's own Notary root key (its
        // certificate's public key) and python-tuf reads the repository.
        let root_bytes = http()
            .get(format!("{}1.root.json", server.tuf_url(TUF_GUN)))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        let root: Value = serde_json::from_slice(&root_bytes).unwrap();
        for role in ["root", "targets"] {
            let id = root["signed"]["roles"][role]["keyids"][0].as_str().unwrap();
            assert_eq!(root["signed"]["keys"][id]["keytype"], "ecdsa", "{role}");
            assert_eq!(root["signed"]["keys"][id]["scheme"], "ecdsa-sha2-nistp256");
        }
        let root_file = work.path().join("root.json");
        std::fs::write(&root_file, &root_bytes).unwrap();
        let consumer = Cli::new(&server.url);
        for tag in ["v1", "latest", "release-1.0"] {
            let digest = notary_digest(tag);
            assert_eq!(report["tags"][tag], format!("sha256:{digest}"), "{tag}");
            let ours: Value = serde_json::from_str(&consumer.ok(&[
                "lookup",
                &format!("{TUF_GUN}:{tag}"),
                "--output",
                "json",
            ]))
            .unwrap();
            assert_eq!(ours["digest"], format!("sha256:{digest}"), "{tag}");
            if let Some(python) = &python {
                let theirs = ngclient_lookup(
                    python,
                    &server.tuf_url(TUF_GUN),
                    &root_file,
                    tag,
                    &format!("the migrated repository ({backend:?})"),
                );
                assert_eq!(theirs["sha256"], digest, "{tag}");
            }
        }
        // The delegate's tag waits for its own signature: the delegation to
        // its key is there, its tag is not vouched for by anyone else.
        let targets: Value = serde_json::from_slice(
            &http()
                .get(format!("{}targets.json", server.tuf_url(TUF_GUN)))
                .send()
                .unwrap()
                .bytes()
                .unwrap(),
        )
        .unwrap();
        let delegated = &targets["signed"]["delegations"]["roles"];
        assert_eq!(delegated[1]["name"], "ci");
        assert_eq!(delegated[1]["paths"][0], "ci-*");
        assert!(report["tags"].get("ci-7").is_none());

        // Running it again cannot make a second repository.
        let said = one_line(&migrate(
            &cli,
            publisher.trust_dir(),
            NOTARY_PASSPHRASE,
            None,
        ));
        assert!(said.contains("already initialised"), "{said}");

        // A Notary GUN looked up as spec TUF says what it is.
        let said = consumer.fails(&["lookup", &format!("{GUN}:v1")]);
        assert!(said.contains("Notary v1 repository"), "{said}");
    }
}
