//! Re-rooted mirrors (issue 9): the mirror operator's own repository
//! delegates to the upstream publisher's targets keys, and the upstream's
//! signed targets is stored verbatim as that delegated role. Consumers of
//! the mirror (tagtrust and python-tuf) resolve upstream tags through the
//! operator's root; the operator decides when updates come in, can pin or
//! roll back a tag with its own signature, follows an upstream key
//! rotation, and cuts off a compromised upstream by removing the
//! delegation. A consumer's versions never go backwards throughout.

use serde_json::Value;
use tagtrust_tests::{
    json, ngclient_lookup, python_with_tuf, random_digest, succeeded, Backend, Cli, Published,
    TestServer,
};

const UPSTREAM: &str = "localhost:5000/upstream/app";
const DEST: &str = "mirror.internal/acme/app";

/// The operator: a home holding DEST's keys on the mirror.
struct Operator {
    cli: Cli,
    upstream_url: String,
    upstream_root: tempfile::NamedTempFile,
}

impl Operator {
    fn new(mirror: &TestServer, upstream: &Published) -> Operator {
        let (cli, _) = Cli::publisher(mirror, "push:*", DEST);
        let upstream_root = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            upstream_root.path(),
            upstream.server.fetch(UPSTREAM, "1.root.json"),
        )
        .unwrap();
        Operator {
            cli,
            upstream_url: upstream.server.url.clone(),
            upstream_root,
        }
    }

    /// `mirror import` of UPSTREAM as DEST; its JSON report.
    fn import(&self) -> Value {
        json(&self.cli.ok(&[
            "mirror",
            "import",
            "--from",
            &self.upstream_url,
            "--to",
            &self.cli.server,
            UPSTREAM,
            "--as",
            DEST,
            "--upstream-root",
            self.upstream_root.path().to_str().unwrap(),
            "-o",
            "json",
        ]))
    }
}

/// A consumer's `lookup -o json` of DEST:tag on the mirror.
fn resolve(consumer: &Cli, tag: &str) -> Value {
    json(&consumer.ok(&["lookup", &format!("{DEST}:{tag}"), "-o", "json"]))
}

#[test]
fn a_rerooted_mirror_serves_upstream_tags_under_the_operators_control() {
    let upstream = Published::spawn(Backend::Sqlite, UPSTREAM);
    let publisher = &upstream.publisher;
    let old_release = publisher.tag_set(UPSTREAM, "1.0");
    let mirror = TestServer::spawn(*Backend::all().last().unwrap());
    let operator = Operator::new(&mirror, &upstream);
    let report = operator.import();
    assert_eq!(
        report["imported"],
        serde_json::json!(["upstream"]),
        "{report}"
    );

    // Consumers resolve the upstream's tags, signed by the upstream's key
    // through the operator's delegation.
    let consumer = Cli::new(&mirror.url);
    let answer = resolve(&consumer, "latest");
    assert_eq!(answer["digest"], upstream.digest.as_str());
    assert_eq!(answer["signed_by"], "upstream");
    let mut versions = vec![answer["targets"]["version"].as_u64().unwrap()];

    // An upstream update arrives only when the operator imports it.
    let new_latest = publisher.tag_set(UPSTREAM, "latest");
    assert_eq!(
        resolve(&consumer, "latest")["digest"],
        upstream.digest.as_str()
    );
    assert_eq!(
        operator.import()["imported"],
        serde_json::json!(["upstream"])
    );
    let answer = resolve(&consumer, "latest");
    assert_eq!(answer["digest"], new_latest.as_str());
    versions.push(answer["targets"]["version"].as_u64().unwrap());
    // Nothing new: nothing published.
    assert!(operator.import()["targets_version"].is_null());

    // The operator pins a tag in its own targets (searched first), and rolls
    // another back with a higher version pointing at an older digest.
    let (pinned, size) = random_digest();
    succeeded(
        &operator
            .cli
            .tag_set_digest(DEST, "latest", &pinned, size, &[]),
    );
    assert_eq!(resolve(&consumer, "latest")["digest"], pinned.as_str());
    let newer_release = publisher.tag_set(UPSTREAM, "1.0");
    operator.import();
    assert_eq!(resolve(&consumer, "1.0")["digest"], newer_release.as_str());
    succeeded(
        &operator
            .cli
            .tag_set_digest(DEST, "1.0", &old_release, 100, &[]),
    );
    let answer = resolve(&consumer, "1.0");
    assert_eq!(answer["digest"], old_release.as_str());
    assert_eq!(answer["signed_by"], "targets");
    versions.push(answer["targets"]["version"].as_u64().unwrap());

    // The upstream rotates its targets key: the next import follows its
    // root chain and re-delegates to the new key.
    publisher.ok(&["key", "rotate", UPSTREAM, "targets"]);
    let after_rotation = publisher.tag_set(UPSTREAM, "2.0");
    let report = operator.import();
    assert!(report["targets_version"].as_u64().is_some(), "{report}");
    let answer = resolve(&consumer, "2.0");
    assert_eq!(answer["digest"], after_rotation.as_str());
    versions.push(answer["targets"]["version"].as_u64().unwrap());

    // The upstream's key is compromised and signs a forged tag; once the
    // operator removes the delegation, the upstream's tags are gone for the
    // mirror's consumers and the operator's own remain.
    let forged = publisher.tag_set(UPSTREAM, "evil");
    operator.import();
    assert_eq!(resolve(&consumer, "evil")["digest"], forged.as_str());
    operator.cli.ok(&["delegation", "rm", DEST, "upstream"]);
    let out = consumer.run(&["lookup", &format!("{DEST}:evil")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not signed"));
    let answer = resolve(&consumer, "latest");
    assert_eq!(answer["digest"], pinned.as_str());
    versions.push(answer["targets"]["version"].as_u64().unwrap());
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}

#[test]
fn python_tuf_resolves_a_tag_through_a_rerooted_mirror() {
    let Some(python) = python_with_tuf() else {
        return;
    };
    let upstream = Published::spawn(Backend::Sqlite, UPSTREAM);
    let mirror = TestServer::spawn(Backend::Sqlite);
    let operator = Operator::new(&mirror, &upstream);
    operator.import();
    let root = operator.cli.trusted_dir(&mirror, DEST).join("root.json");
    let theirs = ngclient_lookup(
        &python,
        &mirror.tuf_url(DEST),
        &root,
        "latest",
        "the re-rooted mirror",
    );
    assert_eq!(
        format!("sha256:{}", theirs["sha256"].as_str().unwrap()),
        upstream.digest
    );
}
