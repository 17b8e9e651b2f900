//! Multi-party root through the real binaries: holders make their own root
//! keys, every root change is staged until a threshold of the old and of the
//! new root's keys have signed, each holder signs on their own machine with
//! only the staged file and their key. Key export/import stay encrypted
//! PKCS#8 that OpenSSL reads.

use std::path::{Path, PathBuf};
use tagtrust_shared::{Metadata, Root};
use tagtrust_tests::{json, random_digest, succeeded, Backend, Cli, TestServer, TEST_PASSPHRASE};

const GUN: &str = "registry.example.com/acme/app";

/// Copy a staged-root file (as a holder would receive it) to `dir/name`.
fn ship(report: &serde_json::Value, dir: &Path, name: &str) -> PathBuf {
    let staged = report["staged_file"]
        .as_str()
        .unwrap_or_else(|| panic!("not staged: {report}"));
    let to = dir.join(name);
    std::fs::copy(staged, &to).unwrap();
    to
}

fn served_root(server: &TestServer) -> Metadata<Root> {
    Metadata::from_bytes(&server.fetch(GUN, "root.json")).unwrap()
}

fn set_tag(publisher: &Cli, tag: &str) -> String {
    let (d, s) = random_digest();
    publisher.ok(&[
        "tag",
        "set",
        &format!("{GUN}:{tag}"),
        &d,
        "--size",
        &s.to_string(),
    ]);
    d
}

/// A server and a publisher holding a `push:*` token (nothing initialised).
fn server_and_publisher() -> (TestServer, Cli) {
    let server = TestServer::spawn(Backend::Sqlite);
    let publisher = Cli::new(&server.url).with_token(&server.create_token(&["push:*"]));
    (server, publisher)
}

/// A root key holder with a home of their own on `server` and a key pair
/// `name`: the holder, the private key file, the public key file, the key ID.
fn holder(server: &TestServer, name: &str) -> (Cli, PathBuf, PathBuf, String) {
    let cli = Cli::new(&server.url);
    let (key, public, id) = cli.generate_key(name);
    (cli, key, public, id)
}

/// A 2-of-3 root whose holders B and C generated their own keys: the
/// initiator A never sees them. Root v1 is staged until B signs (on B's own
/// machine, from the shipped file); `refresh --role root` is staged until C
/// signs; consumers follow the chain.
#[test]
fn a_two_of_three_root_of_the_holders_own_keys_is_staged_signed_and_refreshed() {
    let (server, publisher) = server_and_publisher();
    let (b, b_key, b_pub, b_id) = holder(&server, "root-b");
    let (c, c_key, c_pub, c_id) = holder(&server, "root-c");
    let ship_dir = tempfile::tempdir().unwrap();

    // Without a threshold, three root keys is a question, not a default.
    let err = publisher.fails(&[
        "init",
        GUN,
        "--root-key",
        b_pub.to_str().unwrap(),
        "--root-key",
        c_pub.to_str().unwrap(),
    ]);
    assert!(err.contains("--root-threshold"), "{err}");

    let init = publisher.init_with_holders(GUN, &[&b_pub, &c_pub], 2);
    assert_eq!(init["root_signatures_needed"], 1);
    let root_ids: Vec<&str> = init["root_key_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(root_ids.len(), 3);
    assert!(root_ids.contains(&b_id.as_str()) && root_ids.contains(&c_id.as_str()));
    let a_id = root_ids
        .iter()
        .find(|id| **id != b_id && **id != c_id)
        .unwrap()
        .to_string();
    // The initiator holds exactly one root key: its own.
    let keys = json(&publisher.ok(&["key", "list", "-o", "json"]));
    let root_keys: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["role"] == "root")
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(root_keys, [a_id.as_str()]);

    // Nothing is published yet; publish says what is missing and whose.
    let consumer = Cli::new(&server.url);
    consumer.fails(&["lookup", &format!("{GUN}:latest")]);
    let err = publisher.fails(&["root", "publish", GUN]);
    assert!(err.contains("1 more signature needed"), "{err}");
    assert!(err.contains(&b_id) && err.contains(&c_id), "{err}");
    assert!(!err.contains(&format!("signed: {a_id}")), "{err}");

    // A key that is not a root key cannot sign the staged root.
    let (stranger, _, _) = b.generate_key("stranger");
    let staged_v1 = ship(&init["root_signing"], ship_dir.path(), "v1.json");
    let err = b.root_sign_refused(GUN, &stranger, &staged_v1);
    assert!(err.contains("not a root key"), "{err}");

    // B signs on B's machine with only the file and B's key, and no server.
    let out = b
        .command()
        .env_remove("TAGTRUST_SERVER")
        .args(["root", "sign", GUN, "--key"])
        .arg(&b_key)
        .arg("--staged")
        .arg(&staged_v1)
        .args(["-o", "json"])
        .output()
        .unwrap();
    succeeded(&out);
    let signed = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(signed["needed"], 0);
    assert_eq!(signed["new_root"]["signed_by"].as_array().unwrap().len(), 2);

    // Back at A: merge B's signature, publish.
    let imported =
        json(&publisher.ok(&["root", "import", staged_v1.to_str().unwrap(), "-o", "json"]));
    assert_eq!(imported["needed"], 0);
    let published = json(&publisher.ok(&["root", "publish", GUN, "-o", "json"]));
    assert_eq!(published["published"], true);
    let d = set_tag(&publisher, "latest");
    assert_eq!(consumer.lookup(GUN, "latest"), d);
    let root = served_root(&server);
    assert_eq!(root.signed.roles["root"].threshold, 2);
    assert_eq!(root.signatures.len(), 2);

    // Refresh: staged, the text says how many and whose.
    let text = publisher.ok(&["refresh", GUN, "--role", "root"]);
    assert!(text.contains("root v2 of"), "{text}");
    assert!(
        text.contains("1 more signature needed")
            && text.contains("1 more from the old root v1's keys")
            && text.contains("1 more from the new root v2's keys")
            && text.contains(&b_id)
            && text.contains(&c_id),
        "{text}"
    );
    assert_eq!(
        served_root(&server).signed.version,
        1,
        "nothing published yet"
    );
    // A second root change waits for the first.
    let err = publisher.fails(&["key", "rotate", GUN, "timestamp"]);
    assert!(err.contains("already staged"), "{err}");

    let status = json(&publisher.ok(&["root", "status", GUN, "-o", "json"]));
    let staged_v2 = ship(&status, ship_dir.path(), "v2.json");
    // C trusts the repository (a lookup) and signs the shipped file; the
    // replaced root is checked against the root C trusts.
    c.ok(&["lookup", &format!("{GUN}:latest")]);
    let signed = c.root_sign(GUN, &c_key, &staged_v2);
    assert_eq!(signed["needed"], 0);
    assert_eq!(signed["previous_root_checked"], true);
    // Published from the returned file; the home's staged copy is done too.
    let published = publisher.root_publish(GUN, &staged_v2);
    assert_eq!(published["published"], true);
    assert_eq!(
        published["old_root"]["signed_by"].as_array().unwrap().len(),
        2
    );
    let err = publisher.fails(&["root", "status", GUN]);
    assert!(err.contains("no staged root change"), "{err}");
    assert_eq!(served_root(&server).signed.version, 2);

    // The consumer that trusted v1 follows the chain; so does one pinning v1.
    let d = set_tag(&publisher, "latest");
    assert_eq!(consumer.lookup(GUN, "latest"), d);
    let trusted: Metadata<Root> = Metadata::from_bytes(
        &std::fs::read(consumer.trusted_dir(&server, GUN).join("root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(trusted.signed.version, 2);
}

/// Holder changes: a root that the new holders alone signed is refused
/// (the old root's threshold is missing), so is one below the new root's
/// threshold; a removed holder signs nothing more; consumers follow.
#[test]
fn root_holder_changes_need_the_old_and_the_new_threshold() {
    let (server, publisher) = server_and_publisher();
    let (b, b_key, b_pub, b_id) = holder(&server, "root-b");
    let (c, c_key, c_pub, c_id) = holder(&server, "root-c");
    let (d, d_key, d_pub, d_id) = holder(&server, "root-d");
    let ship_dir = tempfile::tempdir().unwrap();
    let init = publisher.init_with_holders(GUN, &[&b_pub, &c_pub], 2);
    let file = ship(&init["root_signing"], ship_dir.path(), "v1.json");
    b.root_sign(GUN, &b_key, &file);
    publisher.ok(&["root", "publish", GUN, "--staged", file.to_str().unwrap()]);
    let consumer = Cli::new(&server.url);
    let tag = set_tag(&publisher, "v1");
    assert_eq!(consumer.lookup(GUN, "v1"), tag);

    // Add D: the new root lists A, B, C, D (threshold 2). A signed when
    // staging; D signs: the new root's threshold is met by holders of the
    // new root, but only one key of the old root (A) signed.
    let report = json(&publisher.ok(&[
        "root",
        "add-key",
        GUN,
        "--key",
        d_pub.to_str().unwrap(),
        "-o",
        "json",
    ]));
    let signing = &report["root_signing"];
    assert_eq!(signing["published"], false);
    assert!(signing["differences"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(format!("root: adds key {d_id}"))));
    let file = ship(signing, ship_dir.path(), "v2.json");
    let signed = d.root_sign(GUN, &d_key, &file);
    assert_eq!(signed["new_root"]["needed"], 0);
    assert_eq!(signed["old_root"]["needed"], 1);
    let err = publisher.fails(&["root", "publish", GUN, "--staged", file.to_str().unwrap()]);
    assert!(
        err.contains("cannot be published yet")
            && err.contains("1 more from the old root v1's keys")
            && err.contains(&b_id)
            && err.contains(&c_id)
            && !err.contains("from the new root"),
        "{err}"
    );
    assert_eq!(served_root(&server).signed.version, 1);
    // The server, too, refuses it: the threshold is TUF's, not the client's.
    let staged: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let form = reqwest::blocking::multipart::Form::new().part(
        "files",
        reqwest::blocking::multipart::Part::bytes(serde_json::to_vec(&staged["root"]).unwrap())
            .file_name("root"),
    );
    let resp = reqwest::blocking::Client::new()
        .post(server.tuf_url(GUN))
        .bearer_auth(publisher.token.as_deref().unwrap())
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // B (an old holder) signs: published.
    b.root_sign(GUN, &b_key, &file);
    publisher.ok(&["root", "publish", GUN, "--staged", file.to_str().unwrap()]);
    assert_eq!(served_root(&server).signed.roles["root"].keyids.len(), 4);

    // Remove C and raise the threshold to 3 of A, B, D: B signs too, which
    // meets the old root's 2 but not the new root's 3.
    let report = json(&publisher.ok(&[
        "root",
        "remove-key",
        GUN,
        &c_id[..12],
        "--threshold",
        "3",
        "-o",
        "json",
    ]));
    let file = ship(&report["root_signing"], ship_dir.path(), "v3.json");
    let signed = b.root_sign(GUN, &b_key, &file);
    assert_eq!(signed["old_root"]["needed"], 0);
    assert_eq!(signed["new_root"]["needed"], 1);
    assert_eq!(signed["new_root"]["unsigned"], serde_json::json!([d_id]));
    let err = publisher.fails(&["root", "publish", GUN, "--staged", file.to_str().unwrap()]);
    assert!(
        err.contains("1 more from the new root v3's keys") && err.contains(&d_id),
        "{err}"
    );
    // C, being removed, may still sign as an old-root key, but that does
    // not help the new root.
    c.root_sign(GUN, &c_key, &file);
    publisher.fails(&["root", "publish", GUN, "--staged", file.to_str().unwrap()]);
    d.root_sign(GUN, &d_key, &file);
    let published = publisher.root_publish(GUN, &file);
    assert_eq!(published["published"], true);
    let root = served_root(&server);
    assert_eq!(root.signed.version, 3);
    assert_eq!(root.signed.roles["root"].threshold, 3);
    assert!(!root.signed.roles["root"].keyids.contains(&c_id));

    // C is out: it cannot sign the next change.
    let report = json(&publisher.ok(&["root", "set-threshold", GUN, "2", "-o", "json"]));
    let file = ship(&report["root_signing"], ship_dir.path(), "v4.json");
    let err = c.root_sign_refused(GUN, &c_key, &file);
    assert!(err.contains("not a root key"), "{err}");
    publisher.ok(&["root", "discard", GUN]);

    // The consumer that trusted v1 follows v2 and v3.
    let tag = set_tag(&publisher, "v1");
    assert_eq!(consumer.lookup(GUN, "v1"), tag);
}

/// `--root-keys N` still works (every key made here, so the local keys meet
/// the threshold and root v1 is published at once); exported keys stay
/// encrypted and OpenSSL reads them.
#[test]
fn root_keys_made_here_publish_at_once_and_export_encrypted() {
    let (server, publisher) = server_and_publisher();
    let init = json(&publisher.ok(&[
        "init",
        GUN,
        "--root-keys",
        "3",
        "--root-threshold",
        "2",
        "-o",
        "json",
    ]));
    assert_eq!(init["root_signatures_needed"], 0);
    assert_eq!(init["root_signing"]["published"], true);
    let root_ids: Vec<String> = init["root_key_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(root_ids.len(), 3);
    let root = served_root(&server);
    assert_eq!(root.signed.roles["root"].threshold, 2);
    // And later root changes too: a refresh publishes directly.
    let refreshed = json(&publisher.ok(&["refresh", GUN, "--role", "root", "-o", "json"]));
    assert_eq!(refreshed["root_signing"]["published"], true);

    // A key travels encrypted (key export), and OpenSSL can read it with
    // the passphrase.
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("second-root.pem");
    publisher.ok(&[
        "key",
        "export",
        &root_ids[1][..12],
        "--out",
        exported.to_str().unwrap(),
    ]);
    let pem = std::fs::read_to_string(&exported).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let openssl = std::process::Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(&exported)
        .args(["-passin", &format!("pass:{TEST_PASSPHRASE}")])
        .output()
        .unwrap();
    succeeded(&openssl);

    // Another home imports it; a wrong passphrase is one clear line.
    let holder = Cli::new(&server.url);
    let imported = json(&holder.ok(&[
        "key",
        "import",
        exported.to_str().unwrap(),
        "--gun",
        GUN,
        "--role",
        "root",
        "-o",
        "json",
    ]));
    assert_eq!(imported["key_id"], root_ids[1].as_str());
    let out = holder
        .command()
        .env("TAGTRUST_PASSPHRASE", "wrong")
        .args(["key", "import", exported.to_str().unwrap(), "--role", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong passphrase") && err.trim().lines().count() == 1,
        "{err}"
    );
    let d = set_tag(&publisher, "latest");
    assert_eq!(Cli::new(&server.url).lookup(GUN, "latest"), d);
}
