//! Key rotation, refresh and expiry cliffs through the real binaries.

use std::path::{Path, PathBuf};
use tagtrust_shared::{Metadata, Root, SigningKey, Targets, Timestamp};
use tagtrust_tests::{
    initialised, json, random_digest, succeeded, Backend, Cli, TestServer, TEST_PASSPHRASE,
};

const GUN: &str = "registry.example.com/acme/app";

fn fetch(server: &TestServer, file: &str) -> Vec<u8> {
    server.fetch(GUN, file)
}

#[test]
fn every_top_level_key_rotates_and_consumers_follow() {
    for backend in Backend::all() {
        let (server, publisher, token) = initialised(backend, "push:*", GUN);
        let latest = format!("{GUN}:latest");
        let d1 = publisher.tag_set(GUN, "latest");
        let original_root =
            std::fs::read(publisher.trusted_dir(&server, GUN).join("root.json")).unwrap();

        let consumer = Cli::new(&server.url);
        assert_eq!(consumer.lookup(GUN, "latest"), d1);

        let old_targets_key = json(&publisher.ok(&["key", "list", "-o", "json"]))
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["role"] == "targets")
            .map(|k| k["path"].as_str().unwrap().to_string())
            .unwrap();

        for (i, role) in ["targets", "root", "timestamp", "snapshot"]
            .into_iter()
            .enumerate()
        {
            let report = json(&publisher.ok(&["key", "rotate", GUN, role, "-o", "json"]));
            let new_id = report["new_key_id"].as_str().unwrap().to_string();
            assert_eq!(report["root_version"], 2 + i as u64, "{role}");
            let root = Metadata::<Root>::from_bytes(&fetch(&server, "root.json")).unwrap();
            assert_eq!(
                root.signed.roles[role].keyids,
                std::slice::from_ref(&new_id),
                "{role}"
            );
            let d = publisher.tag_set(GUN, "latest");
            // The consumer that trusted the first root follows the chain.
            assert_eq!(consumer.lookup(GUN, "latest"), d, "after rotating {role}");
            if role == "timestamp" {
                let ts =
                    Metadata::<Timestamp>::from_bytes(&fetch(&server, "timestamp.json")).unwrap();
                assert_eq!(ts.signatures.len(), 1);
                assert_eq!(
                    ts.signatures[0].keyid, new_id,
                    "server signs with the new key"
                );
            }
        }

        // A consumer that pins the very first root still gets the update.
        let pinned_root = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pinned_root.path(), &original_root).unwrap();
        let pinned = Cli::new(&server.url);
        let out = pinned.lookup_pinned(&latest, pinned_root.path());
        succeeded(&out);

        // The rotated-out targets key can no longer sign anything: the
        // server refuses a targets version it signed.
        let old_key = SigningKey::from_encrypted_pem(
            &std::fs::read_to_string(&old_targets_key).unwrap(),
            TEST_PASSPHRASE,
        )
        .unwrap();
        let mut targets = Metadata::<Targets>::from_bytes(&fetch(&server, "targets.json"))
            .unwrap()
            .signed;
        targets.version += 1;
        let mut forged = Metadata::new(targets).unwrap();
        forged.sign(&old_key);
        let form = reqwest::blocking::multipart::Form::new().part(
            "files",
            reqwest::blocking::multipart::Part::bytes(forged.to_bytes()).file_name("targets"),
        );
        let resp = reqwest::blocking::Client::new()
            .post(server.tuf_url(GUN))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{}", resp.text().unwrap());
        let before = fetch(&server, "targets.json");
        assert_eq!(
            Metadata::<Targets>::from_bytes(&before)
                .unwrap()
                .signed
                .version,
            forged.signed.version - 1
        );
    }
}

#[test]
fn refresh_resigns_without_changing_content() {
    let (server, publisher, _) = initialised(Backend::Sqlite, "push:*", GUN);
    let d = publisher.tag_set(GUN, "v1");
    let before = Metadata::<Targets>::from_bytes(&fetch(&server, "targets.json")).unwrap();

    let report = json(&publisher.ok(&["refresh", GUN, "-o", "json"]));
    assert_eq!(report["version"], before.signed.version + 1);
    let after = Metadata::<Targets>::from_bytes(&fetch(&server, "targets.json")).unwrap();
    assert_eq!(after.signed.targets, before.signed.targets);
    assert!(after.signed.expires >= before.signed.expires);

    let report = json(&publisher.ok(&["refresh", GUN, "--role", "root", "-o", "json"]));
    assert_eq!(report["version"], 2);
    let err = publisher.fails(&["refresh", GUN, "--role", "timestamp"]);
    assert!(err.contains("server re-signs"), "{err}");
    assert_eq!(Cli::new(&server.url).lookup(GUN, "v1"), d);
}

/// A publisher whose root lives 20 days (under the 30-day warning window):
/// the next tag change re-signs root too, in the same publish, and says so.
#[test]
fn publish_resigns_a_root_about_to_expire() {
    let server = TestServer::spawn(Backend::Sqlite);
    let publisher = Cli::new(&server.url).with_token(&server.create_token(&["push:*"]));
    std::fs::write(
        publisher.home.path().join("config.toml"),
        "[expiry]\nroot_days = 20\n",
    )
    .unwrap();
    publisher.ok(&["init", GUN]);
    std::fs::write(publisher.home.path().join("config.toml"), "").unwrap();
    let (d, s) = random_digest();
    let out = publisher.tag_set_digest(GUN, "v1", &d, s, &["-o", "json"]);
    succeeded(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("re-signed root"));
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["resigned"][0], "root");
    let root = Metadata::<Root>::from_bytes(&fetch(&server, "root.json")).unwrap();
    assert_eq!(root.signed.version, 2);
    assert!(root.signed.expires > chrono::Utc::now() + chrono::Duration::days(300));
    // Nothing more to do next time.
    let report = json(&publisher.ok(&["tag", "rm", &format!("{GUN}:v1"), "-o", "json"]));
    assert_eq!(report["resigned"].as_array().unwrap().len(), 0);
}

/// A GUN with a 2-of-3 root of A (the publisher, this home), B and C (their
/// own keys, on their own machines); root v1 signed by A and B, published.
/// Returns the publisher, B with its key file, and C's key ID.
fn two_of_three(server: &TestServer) -> (Cli, Cli, PathBuf, String) {
    let publisher = Cli::new(&server.url).with_token(&server.create_token(&["push:*"]));
    let b = Cli::new(&server.url);
    let c = Cli::new(&server.url);
    let (b_key, b_pub, _) = b.generate_key("root-b");
    let (_, c_pub, c_id) = c.generate_key("root-c");
    publisher.init_with_holders(GUN, &[&b_pub, &c_pub], 2);
    let staged = json(&publisher.ok(&["root", "status", GUN, "-o", "json"]));
    b.root_sign(
        GUN,
        &b_key,
        Path::new(staged["staged_file"].as_str().unwrap()),
    );
    publisher.ok(&["root", "publish", GUN]);
    (publisher, b, b_key, c_id)
}

/// B signs the change staged in the publisher's home, on B's machine from
/// a shipped copy; the publisher merges it back.
fn sign_by_b(publisher: &Cli, b: &Cli, b_key: &Path) {
    let status = json(&publisher.ok(&["root", "status", GUN, "-o", "json"]));
    let dir = tempfile::tempdir().unwrap();
    let shipped = dir.path().join("staged.json");
    std::fs::copy(status["staged_file"].as_str().unwrap(), &shipped).unwrap();
    b.root_sign(GUN, b_key, &shipped);
    publisher.ok(&["root", "import", shipped.to_str().unwrap()]);
}

/// A compromised timestamp key can be rotated out under a multi-party root:
/// staged, the server keeps signing with the listed key until the holders
/// sign, then consumers follow the new root and the new key.
#[test]
fn a_timestamp_key_rotation_under_a_two_of_three_root_is_staged_then_followed() {
    let server = TestServer::spawn(Backend::Sqlite);
    let (publisher, b, b_key, c_id) = two_of_three(&server);
    let d1 = publisher.tag_set(GUN, "latest");
    let consumer = Cli::new(&server.url);
    assert_eq!(consumer.lookup(GUN, "latest"), d1);
    let old_ts = Metadata::<Timestamp>::from_bytes(&fetch(&server, "timestamp.json")).unwrap();

    let report = json(&publisher.ok(&["key", "rotate", GUN, "timestamp", "-o", "json"]));
    let new_id = report["new_key_id"].as_str().unwrap().to_string();
    assert_eq!(report["root_version"], 2);
    let signing = &report["root_signing"];
    assert_eq!(signing["published"], false);
    assert_eq!(signing["needed"], 1);
    assert!(signing["new_root"]["unsigned"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(c_id)));
    // Not yet: root v1 stays, the server signs with the key it lists.
    assert_eq!(
        Metadata::<Root>::from_bytes(&fetch(&server, "root.json"))
            .unwrap()
            .signed
            .version,
        1
    );
    let d2 = publisher.tag_set(GUN, "latest");
    assert_eq!(consumer.lookup(GUN, "latest"), d2);
    let ts = Metadata::<Timestamp>::from_bytes(&fetch(&server, "timestamp.json")).unwrap();
    assert_eq!(ts.signatures[0].keyid, old_ts.signatures[0].keyid);

    let err = publisher.fails(&["root", "publish", GUN]);
    assert!(err.contains("1 more signature needed"), "{err}");
    sign_by_b(&publisher, &b, &b_key);
    let published = json(&publisher.ok(&["root", "publish", GUN, "-o", "json"]));
    assert_eq!(published["published"], true);
    let root = Metadata::<Root>::from_bytes(&fetch(&server, "root.json")).unwrap();
    assert_eq!(root.signed.version, 2);
    assert_eq!(
        root.signed.roles["timestamp"].keyids,
        std::slice::from_ref(&new_id)
    );
    let ts = Metadata::<Timestamp>::from_bytes(&fetch(&server, "timestamp.json")).unwrap();
    assert_eq!(
        ts.signatures[0].keyid, new_id,
        "server signs with the new key"
    );
    let d3 = publisher.tag_set(GUN, "latest");
    assert_eq!(consumer.lookup(GUN, "latest"), d3);
}

/// A targets key rotation under a multi-party root: the re-signed targets
/// waits with the root and goes out with it at `root publish`; a tag change
/// made meanwhile (with the old key) is kept, re-signed by the new key.
#[test]
fn a_targets_key_rotation_under_a_two_of_three_root_goes_out_with_root_publish() {
    let server = TestServer::spawn(Backend::Sqlite);
    let (publisher, b, b_key, _) = two_of_three(&server);
    let d1 = publisher.tag_set(GUN, "v1");
    let report = json(&publisher.ok(&["key", "rotate", GUN, "targets", "-o", "json"]));
    let new_id = report["new_key_id"].as_str().unwrap().to_string();
    assert_eq!(report["root_signing"]["published"], false);
    // Meanwhile, a tag change under the current root and targets key.
    let d2 = publisher.tag_set(GUN, "v2");

    sign_by_b(&publisher, &b, &b_key);
    publisher.ok(&["root", "publish", GUN]);
    let root = Metadata::<Root>::from_bytes(&fetch(&server, "root.json")).unwrap();
    assert_eq!(
        root.signed.roles["targets"].keyids,
        std::slice::from_ref(&new_id)
    );
    let targets = Metadata::<Targets>::from_bytes(&fetch(&server, "targets.json")).unwrap();
    assert_eq!(targets.signatures[0].keyid, new_id);
    assert_eq!(
        targets.signed.targets.len(),
        2,
        "the tag set meanwhile is kept"
    );
    let consumer = Cli::new(&server.url);
    assert_eq!(consumer.lookup(GUN, "v1"), d1);
    assert_eq!(consumer.lookup(GUN, "v2"), d2);
    // And the next tag change is signed with the new key.
    let d3 = publisher.tag_set(GUN, "v3");
    assert_eq!(consumer.lookup(GUN, "v3"), d3);
}
