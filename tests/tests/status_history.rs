//! `tagtrust status` and `tagtrust history` through the real binaries.

use serde_json::Value;
use tagtrust_tests::proxy::{Tamper, TamperingProxy};
use tagtrust_tests::{initialised, json, succeeded, Backend, Cli, Published, TestServer};

const GUN: &str = "registry.example.com/acme/app";

#[test]
fn status_reports_every_role_and_warns_before_expiry() {
    let Published {
        server, publisher, ..
    } = Published::spawn(Backend::Sqlite, GUN);

    let report = json(&publisher.ok(&["status", GUN, "-o", "json"]));
    let roles = report["roles"].as_array().unwrap();
    let role = |name: &str| {
        roles
            .iter()
            .find(|r| r["role"] == name)
            .unwrap_or_else(|| panic!("{name}: {report}"))
    };
    assert_eq!(role("root")["key_holder"], "local");
    assert_eq!(role("targets")["key_holder"], "local");
    assert_eq!(role("targets")["version"], 2);
    assert_eq!(role("timestamp")["key_holder"], "server");
    assert_eq!(role("snapshot")["key_holder"], "server");
    for r in roles {
        assert!(r["seconds_left"].as_i64().unwrap() > 0, "{r}");
        assert!(r["signed_at"].is_string(), "signing time missing: {r}");
    }
    assert_eq!(report["warnings"].as_array().unwrap().len(), 0);

    // A consumer sees the publisher's keys as held elsewhere; with a
    // 100-day window the 90-day targets role is flagged (root is not).
    let consumer = Cli::new(&server.url);
    let out = consumer.run(&["status", GUN, "--warning-days", "100", "-o", "json"]);
    succeeded(&out);
    let report = json(&String::from_utf8_lossy(&out.stdout));
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().starts_with("targets expires"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: targets expires"));
    let roles = report["roles"].as_array().unwrap();
    assert!(roles
        .iter()
        .any(|r| r["role"] == "root" && r["key_holder"] == "offline"));
}

#[test]
fn history_lists_every_change_of_a_tag_across_a_key_rotation() {
    for backend in Backend::all() {
        let (server, publisher, _) = initialised(backend, "push:*", GUN);
        let latest = format!("{GUN}:latest");
        let d1 = publisher.tag_set(GUN, "latest"); // v2
        publisher.tag_set(GUN, "other"); // v3
        publisher.ok(&["key", "rotate", GUN, "targets"]); // v4, new key
        let d2 = publisher.tag_set(GUN, "latest"); // v5
        publisher.ok(&["tag", "rm", &latest]); // v6

        let consumer = Cli::new(&server.url);
        let history = json(&consumer.ok(&["history", &latest, "-o", "json"]));
        assert_eq!(history["unverifiable"].as_array().unwrap().len(), 0);
        let entries = history["entries"].as_array().unwrap();
        let versions: Vec<u64> = entries
            .iter()
            .map(|e| e["version"].as_u64().unwrap())
            .collect();
        assert!(
            entries.iter().all(|e| e["role"] == "targets"),
            "{entries:?}"
        );
        assert_eq!(versions, [2, 5, 6], "{backend:?}: {entries:?}");
        assert_eq!(entries[0]["digest"], d1.as_str());
        assert_eq!(entries[1]["digest"], d2.as_str());
        assert_eq!(entries[2]["digest"], Value::Null);
        // Signed by different keys before and after the rotation.
        assert_ne!(entries[0]["signed_by"], entries[1]["signed_by"]);
    }
}

/// History is verified from the first root this home trusted, not from the
/// server's `1.root.json`: a consumer that started from root v2 cannot vouch
/// for targets signed by a key only root v1 listed, and says so.
#[test]
fn history_is_anchored_at_the_first_trusted_root() {
    let (server, publisher, _) = initialised(Backend::Sqlite, "push:*", GUN);
    let latest = format!("{GUN}:latest");
    let d1 = publisher.tag_set(GUN, "latest"); // targets v2
    publisher.ok(&["key", "rotate", GUN, "targets"]); // root v2, targets v3

    let root_v2 = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(root_v2.path(), server.fetch(GUN, "2.root.json")).unwrap();
    let consumer = Cli::new(&server.url);
    let out = consumer
        .command()
        .args(["history", &latest, "-o", "json", "--root"])
        .arg(root_v2.path())
        .output()
        .unwrap();
    // `history` takes no --root: establish trust with a lookup first.
    assert!(!out.status.success());
    let out = consumer.lookup_pinned(&latest, root_v2.path());
    succeeded(&out);
    let out = consumer.run(&["history", &latest, "-o", "json"]);
    succeeded(&out);
    let history = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        history["unverifiable"],
        serde_json::json!([{"role": "targets", "versions": [1, 2]}])
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("notice: targets versions 1-2 could not be verified"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["version"], 3);
    assert_eq!(entries[0]["digest"], d1.as_str());

    // The publisher, anchored at root v1, verifies all of it.
    let history = json(&publisher.ok(&["history", &latest, "-o", "json"]));
    assert_eq!(history["unverifiable"], serde_json::json!([]));
    assert_eq!(history["entries"][0]["version"], 2);
}

/// The targets key ID of `gun`'s root v1 on `server`.
fn targets_key_id(server: &TestServer) -> String {
    let root = tagtrust_tests::parse_json(&server.fetch(GUN, "1.root.json"));
    root["signed"]["roles"]["targets"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string()
}

/// "signed by" names keys whose signatures verified: a keyless man in the
/// middle adding a signature entry to an old targets version changes
/// nothing.
#[test]
fn history_names_only_keys_whose_signatures_verified() {
    let (server, publisher, _) = initialised(Backend::Sqlite, "push:*", GUN);
    let latest = format!("{GUN}:latest");
    let d1 = publisher.tag_set(GUN, "latest"); // v2
    publisher.tag_set(GUN, "latest"); // v3

    let proxy = TamperingProxy::start(&server.url);
    let path = format!("/v2/{GUN}/_trust/tuf/2.targets.json");
    let mut v2 = tagtrust_tests::parse_json(&server.fetch(GUN, "2.targets.json"));
    let mut forged = v2["signatures"][0].clone();
    forged["keyid"] = Value::String("ab".repeat(32));
    v2["signatures"].as_array_mut().unwrap().push(forged);
    proxy.tamper(
        &path,
        Tamper::Serve {
            status: 200,
            body: serde_json::to_vec(&v2).unwrap(),
        },
    );
    let consumer = Cli::new(&proxy.url);
    let history = json(&consumer.ok(&["history", &latest, "-o", "json"]));
    assert!(proxy.requests(&path) > 0, "the forged version was served");
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["version"], 2);
    assert_eq!(entries[0]["digest"], d1.as_str());
    assert_eq!(
        entries[0]["signed_by"],
        serde_json::json!([targets_key_id(&server)])
    );
}

/// A tag a delegated role signs has a history too: each change, with the
/// role that signed it (it used to print nothing, exit 0).
#[test]
fn history_follows_delegated_roles() {
    let (server, publisher, token) = initialised(Backend::Sqlite, "push:*", GUN);
    let robot = Cli::new(&server.url).with_token(&token);
    let key = publisher.delegate_to(&robot, GUN, "ci-robot", "release-*");
    let robot_sets = |tag: &str| robot.tag_set_as(GUN, tag, "ci-robot", &key);
    let d1 = robot_sets("release-1"); // ci-robot v1
    let d2 = robot_sets("release-1"); // v2
    robot_sets("release-2"); // v3: release-1 unchanged

    let consumer = Cli::new(&server.url);
    let history = json(&consumer.ok(&["history", &format!("{GUN}:release-1"), "-o", "json"]));
    let entries: Vec<(String, u64, String)> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["role"].as_str().unwrap().to_string(),
                e["version"].as_u64().unwrap(),
                e["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("ci-robot".to_string(), 1, d1),
            ("ci-robot".to_string(), 2, d2)
        ]
    );
    let robot_key_id =
        json(&consumer.ok(&["delegation", "list", GUN, "-o", "json"]))[0]["key_ids"][0].clone();
    assert_eq!(
        history["entries"][0]["signed_by"],
        serde_json::json!([robot_key_id])
    );

    // A tag nothing ever signed: an error, not an empty success.
    let err = consumer.fails(&["history", &format!("{GUN}:release-9")]);
    assert!(err.contains("no history for"), "{err}");
}
