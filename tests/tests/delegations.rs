//! Delegated signers through the real binaries: a publisher delegates
//! `release-*` to a CI robot's key; the robot signs only tags its pattern
//! covers, and consumers resolve them through the delegation.

use serde_json::Value;
use tagtrust_tests::{initialised, json, random_digest, succeeded, Backend, Cli};

const GUN: &str = "registry.example.com/acme/app";

#[test]
fn robot_signs_only_tags_its_delegation_covers() {
    for backend in Backend::all() {
        let (server, publisher, token) =
            initialised(backend, "push:registry.example.com/acme/*", GUN);

        // The robot makes its key pair and hands over the public half.
        let robot = Cli::new(&server.url).with_token(&token);
        let key_file = publisher.delegate_to(&robot, GUN, "ci-robot", "release-*");
        let public_pem =
            std::fs::read_to_string(publisher.home.path().join("ci-robot.pub.pem")).unwrap();
        assert!(
            public_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
            "{public_pem}"
        );
        let list: Value =
            serde_json::from_str(&publisher.ok(&["delegation", "list", GUN, "-o", "json"]))
                .unwrap();
        assert_eq!(list[0]["name"], "ci-robot");
        assert_eq!(list[0]["paths"][0], "release-*");

        let (digest, size) = random_digest();
        let signed_as_robot = |tag: &str| {
            let key = key_file.to_str().unwrap();
            robot.tag_set_digest(
                GUN,
                tag,
                &digest,
                size,
                &["--role", "ci-robot", "--key", key],
            )
        };
        let out = signed_as_robot("release-1");
        succeeded(&out);
        // A second version of the delegated role.
        assert!(signed_as_robot("release-2").status.success());

        // Outside its paths: refused before anything is published.
        let out = signed_as_robot("latest");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("may not sign"), "{err}");

        let consumer = Cli::new(&server.url);
        let v: Value = serde_json::from_str(&consumer.ok(&[
            "lookup",
            &format!("{GUN}:release-1"),
            "--output",
            "json",
        ]))
        .unwrap();
        assert_eq!(v["digest"], digest.as_str());
        assert_eq!(v["signed_by"], "ci-robot");
        consumer.fails(&["lookup", &format!("{GUN}:latest")]);

        let tags: Value = serde_json::from_str(&consumer.ok(&["list", GUN, "-o", "json"])).unwrap();
        let tags = tags.as_array().unwrap();
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert!(tags.iter().all(|t| t["signed_by"] == "ci-robot"));

        // Revoking the delegation revokes the robot's tags.
        publisher.ok(&["delegation", "rm", GUN, "ci-robot"]);
        let err = consumer.fails(&["lookup", &format!("{GUN}:release-1")]);
        assert!(err.contains("not signed"), "{err}");
    }
}

/// Two robots publish to their own delegated roles of one GUN at the same
/// time: neither loses the other's updates (the server rebuilds snapshot
/// under the repository lock from what is stored).
#[test]
fn robots_publishing_at_once_keep_each_others_tags() {
    for backend in Backend::all() {
        let (server, publisher, token) =
            initialised(backend, "push:registry.example.com/acme/*", GUN);
        let robots: Vec<(String, Cli, std::path::PathBuf)> = ["a", "b"]
            .iter()
            .map(|name| {
                let robot = Cli::new(&server.url).with_token(&token);
                let role = format!("robot-{name}");
                let key = publisher.delegate_to(&robot, GUN, &role, &format!("{name}-*"));
                (name.to_string(), robot, key)
            })
            .collect();

        const TAGS: usize = 5;
        let published: Vec<Vec<(String, String)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = robots
                .iter()
                .map(|(name, robot, key)| {
                    scope.spawn(move || {
                        (0..TAGS)
                            .map(|i| {
                                let tag = format!("{name}-{i}");
                                let role = format!("robot-{name}");
                                let digest = robot.tag_set_as(GUN, &tag, &role, key);
                                (tag, digest)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let consumer = Cli::new(&server.url);
        let listed: Value =
            serde_json::from_str(&consumer.ok(&["list", GUN, "-o", "json"])).unwrap();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 2 * TAGS, "{backend:?}: {listed:?}");
        for (tag, digest) in published.iter().flatten() {
            assert!(
                listed
                    .iter()
                    .any(|t| t["tag"] == tag.as_str() && t["digest"] == digest.as_str()),
                "{backend:?}: {tag} lost"
            );
        }
    }
}

/// Item 2 of issue 7: replacing a compromised robot's key. `delegation add`
/// on the existing name replaces its keys; until the new key holder
/// publishes, lookups of the robot's paths fail with a clear error while
/// the rest of the repository is unaffected; the new holder's first publish
/// is the version after the old key's last, without the old key's tags;
/// `refresh --role` works; the old key can no longer publish.
#[test]
fn a_replaced_robot_key_hands_the_role_to_its_new_holder() {
    let (server, publisher, token) =
        initialised(Backend::Sqlite, "push:registry.example.com/acme/*", GUN);
    let top = publisher.tag_set(GUN, "latest");
    let robot = Cli::new(&server.url).with_token(&token);
    let robot_key = |name: &str| {
        let key = robot.home.path().join(format!("{name}.pem"));
        let public = robot.ok(&["key", "generate", name, "--out", key.to_str().unwrap()]);
        let public_file = publisher.home.path().join(format!("{name}.pub.pem"));
        std::fs::write(&public_file, public).unwrap();
        (key, public_file)
    };
    let delegate = |public: &std::path::Path| {
        json(&publisher.ok(&[
            "delegation",
            "add",
            GUN,
            "robot",
            "--key",
            public.to_str().unwrap(),
            "--path",
            "release-*",
            "-o",
            "json",
        ]))
    };
    let robot_sets = |tag: &str, key: &std::path::Path| {
        let key = key.to_str().unwrap();
        robot.tag_set_with(GUN, tag, &["--role", "robot", "--key", key, "-o", "json"])
    };
    let (old_key, old_public) = robot_key("old-robot");
    assert_eq!(delegate(&old_public)["replaced"], false);
    let (out, r1) = robot_sets("release-1", &old_key);
    succeeded(&out);
    let (out, _) = robot_sets("release-2", &old_key);
    succeeded(&out);

    let consumer = Cli::new(&server.url);
    let resolved = |tag: &str| {
        json(&consumer.ok(&["lookup", &format!("{GUN}:{tag}"), "-o", "json"]))["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(resolved("release-1"), r1);

    // The old key is compromised: the publisher gives the role a new key.
    let (new_key, new_public) = robot_key("new-robot");
    assert_eq!(delegate(&new_public)["replaced"], true);
    let listed = json(&publisher.ok(&["delegation", "list", GUN, "-o", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // Until the new holder publishes: the robot's paths fail clearly, the
    // rest of the repository is unaffected.
    let err = consumer.fails(&["lookup", &format!("{GUN}:release-1")]);
    assert!(
        err.contains("not signed by the keys delegated to it now"),
        "{err}"
    );
    assert_eq!(resolved("latest"), top);
    let out = consumer.run(&["list", GUN, "-o", "json"]);
    succeeded(&out);
    let tags = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(tags.as_array().unwrap().len(), 1, "{tags}");
    assert_eq!(tags[0]["tag"], "latest");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"notice: skipped delegated role "robot""#),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = consumer.run(&["status", GUN]);
    succeeded(&out);

    // The new holder publishes version 3, starting the role afresh.
    let (out, r3) = robot_sets("release-3", &new_key);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert_eq!(
        json(&String::from_utf8_lossy(&out.stdout))["targets_version"],
        3
    );
    assert!(
        err.contains("no valid metadata under its current delegation"),
        "{err}"
    );
    let refreshed = json(&robot.ok(&[
        "refresh",
        GUN,
        "--role",
        "robot",
        "--key",
        new_key.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(refreshed["version"], 4, "{refreshed}");

    assert_eq!(resolved("release-3"), r3);
    let err = consumer.fails(&["lookup", &format!("{GUN}:release-1")]);
    assert!(err.contains("not signed"), "{err}");
    assert_eq!(consumer.tag_names(GUN), ["latest", "release-3"]);

    // The old key signs nothing any more.
    let (out, _) = robot_sets("release-4", &old_key);
    assert!(!out.status.success());
    assert_eq!(resolved("release-3"), r3);
}
