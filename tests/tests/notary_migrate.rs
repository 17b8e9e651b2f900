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
use tagtrust_tests::{
    http, json, ngclient_lookup, ngclient_run, python_with_tuf, random_digest, succeeded, Backend,
    Cli, TestServer,
};

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

        // The keys used are in the publisher's keyring: root, targets and
        // the held delegation's.
        assert_eq!(
            fields(&report["stored_keys"], "role"),
            ["root", "targets", "releases"]
        );

        // Nobody had to import anything: the migrated keys are in the
        // publisher's keyring, so the repository lives on in tagtrust.
        // Once: signing is the client's, the same on either backend.
        if Some(&backend) == Backend::all().last() {
            after_migration(&AfterMigration {
                server: &server,
                cli: &cli,
                python: python.as_deref(),
                root_file: &root_file,
                delegate_trust_dir: delegate.trust_dir(),
                push: &push,
                backend,
            });
        }

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

/// The string `field` of every object in the JSON array `array`.
fn fields<'a>(array: &'a Value, field: &str) -> Vec<&'a str> {
    let items = array.as_array().unwrap().iter();
    items.map(|item| item[field].as_str().unwrap()).collect()
}

/// What the checks after the migration need.
struct AfterMigration<'a> {
    server: &'a TestServer,
    /// The publisher who migrated (its home holds the migrated keys).
    cli: &'a Cli,
    python: Option<&'a std::path::Path>,
    /// Root v1 of the migrated repository, what its consumers start from.
    root_file: &'a std::path::Path,
    /// The Notary trust directory of the delegate of `targets/ci`.
    delegate_trust_dir: &'a std::path::Path,
    push: &'a str,
    backend: Backend,
}

/// python-tuf resolves `tag` in the migrated repository from root v1 to
/// `digest` (`None`: it finds no such target).
fn python_sees(after: &AfterMigration, tag: &str, digest: Option<&str>) {
    let Some(python) = after.python else { return };
    let what = format!(
        "the migrated repository ({:?}) after tagtrust changed it",
        after.backend
    );
    match digest {
        Some(digest) => {
            let theirs = ngclient_lookup(
                python,
                &after.server.tuf_url(TUF_GUN),
                after.root_file,
                tag,
                &what,
            );
            assert_eq!(
                format!("sha256:{}", theirs["sha256"].as_str().unwrap()),
                digest,
                "{tag}"
            );
        }
        None => {
            let out = ngclient_run(python, &after.server.tuf_url(TUF_GUN), after.root_file, tag);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && said.contains("not found"),
                "{tag}: {said}"
            );
        }
    }
}

/// A consumer who has never seen the repository resolves `tag` to
/// `digest`; `None`: it says the tag is not signed.
fn tagtrust_sees(after: &AfterMigration, tag: &str, digest: Option<&str>) {
    let fresh = Cli::new(&after.server.url);
    let root = after.root_file.to_str().unwrap();
    let reference = format!("{TUF_GUN}:{tag}");
    match digest {
        Some(digest) => {
            let ours = json(&fresh.ok(&["lookup", &reference, "--root", root, "-o", "json"]));
            assert_eq!(ours["digest"], digest, "{tag}");
        }
        None => {
            let said = fresh.fails(&["lookup", &reference, "--root", root]);
            assert!(said.contains("is not signed"), "{tag}: {said}");
        }
    }
}

/// After the migration, with no extra step: tag changes and key rotations
/// signed with the migrated P-256 keys, followed by python-tuf and
/// tagtrust consumers; the delegate who holds only its Notary key imports
/// it and publishes through its delegation.
fn after_migration(after: &AfterMigration) {
    let cli = after.cli;
    // A consumer who follows the repository from the migration on.
    let follower = Cli::new(&after.server.url);
    let root = after.root_file.to_str().unwrap();
    follower.ok(&["lookup", &format!("{TUF_GUN}:v1"), "--root", root]);

    // The delegate-only role has published nothing yet: a lookup of a tag
    // in its paths is a plain one-line miss naming the role.
    let said = follower.fails(&["lookup", &format!("{TUF_GUN}:ci-7")]);
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(
        said.contains("ci-7") && said.contains("role \"ci\"") && said.contains("not published"),
        "{said}"
    );

    // Tag set and tag rm, signed with the migrated Notary targets key.
    let v2 = cli.tag_set(TUF_GUN, "v2");
    cli.ok(&["tag", "rm", &format!("{TUF_GUN}:latest")]);
    for (tag, digest) in [("v2", Some(v2.as_str())), ("latest", None)] {
        python_sees(after, tag, digest);
        tagtrust_sees(after, tag, digest);
    }

    // The held delegation signs with its migrated key, found in the home
    // by its role (no --key).
    let (out, release) = cli.tag_set_with(TUF_GUN, "release-2", &["--role", "releases"]);
    succeeded(&out);
    let resolved = json(&follower.ok(&["lookup", &format!("{TUF_GUN}:release-2"), "-o", "json"]));
    assert_eq!(
        (&resolved["digest"], &resolved["signed_by"]),
        (&release.into(), &"releases".into())
    );

    // Root rotation to a fresh ed25519 key: root v2 is signed by the old
    // P-256 root key and the new key; then targets to a fresh key. Both
    // consumers follow from root v1.
    let rotated = json(&cli.ok(&["key", "rotate", TUF_GUN, "root", "-o", "json"]));
    assert_eq!(rotated["root_version"], 2, "{rotated}");
    let root2 = json(&String::from_utf8(after.server.fetch(TUF_GUN, "2.root.json")).unwrap());
    let new_root_key = root2["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap();
    assert_eq!(root2["signed"]["keys"][new_root_key]["keytype"], "ed25519");
    let signers = fields(&root2["signatures"], "keyid");
    let root1 = json(&std::fs::read_to_string(after.root_file).unwrap());
    let old_root_key = root1["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap();
    assert!(
        signers.contains(&old_root_key) && signers.contains(&new_root_key),
        "{signers:?}"
    );
    // A delegation added and removed, signed with the migrated targets key,
    // to a P-256 public key PEM (as `openssl pkey -pubout` writes one).
    let qa_key = tagtrust_shared::P256SigningKey::generate().public_key();
    let qa_public = cli.home.path().join("qa.pub.pem");
    std::fs::write(&qa_public, &qa_key.keyval.public).unwrap();
    let qa = qa_public.to_str().unwrap();
    cli.ok(&[
        "delegation",
        "add",
        TUF_GUN,
        "qa",
        "--key",
        qa,
        "--path",
        "qa-*",
    ]);
    let names = |cli: &Cli| -> Vec<String> {
        let listed = json(&cli.ok(&["delegation", "list", TUF_GUN, "-o", "json"]));
        fields(&listed, "name")
            .into_iter()
            .map(String::from)
            .collect()
    };
    assert_eq!(names(cli), ["releases", "ci", "qa"]);
    let targets = json(&String::from_utf8(after.server.fetch(TUF_GUN, "targets.json")).unwrap());
    assert_eq!(
        targets["signed"]["delegations"]["keys"][qa_key.key_id()]["keytype"],
        "ecdsa"
    );
    cli.ok(&["delegation", "rm", TUF_GUN, "qa"]);
    assert_eq!(names(cli), ["releases", "ci"]);
    cli.ok(&["key", "rotate", TUF_GUN, "targets"]);
    let v3 = cli.tag_set(TUF_GUN, "v3");
    python_sees(after, "v3", Some(&v3));
    tagtrust_sees(after, "v3", Some(&v3));
    assert_eq!(follower.lookup(TUF_GUN, "v3"), v3);

    // The delegate of targets/ci holds only its Notary key: it imports it
    // (its Notary passphrase opens it; stored under its tagtrust one) and
    // publishes through its delegation, `ci`.
    let notary_key = std::fs::read_dir(after.delegate_trust_dir.join("private"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            std::fs::read_to_string(path).is_ok_and(|text| text.contains("role: targets/ci"))
        })
        .expect("the delegate's Notary key file");
    let delegate = Cli::new(&after.server.url).with_token(after.push);
    let import = |notary_passphrase: &str| {
        let mut cmd = delegate.command();
        cmd.args(["key", "import", "-o", "json"]).arg(&notary_key);
        cmd.env("NOTARY_DELEGATION_PASSPHRASE", notary_passphrase);
        cmd.output().unwrap()
    };
    let said = one_line(&import("wrong"));
    assert!(said.contains("wrong passphrase"), "{said}");
    assert!(!delegate.home.path().join("keys").exists());
    let imported = json(&succeeded(&import(NOTARY_PASSPHRASE)));
    let key_file = imported["file"].as_str().unwrap();
    assert!(key_file.contains("/ci."), "{key_file}");
    let (digest, size) = random_digest();
    let size = size.to_string();
    let reference = format!("{TUF_GUN}:ci-8");
    delegate.ok(&[
        "tag", "set", &reference, &digest, "--size", &size, "--role", "ci", "--key", key_file,
    ]);
    python_sees(after, "ci-8", Some(&digest));
    tagtrust_sees(after, "ci-8", Some(&digest));
}
