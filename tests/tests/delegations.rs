//! Delegated signers through the real binaries: a publisher delegates
//! `release-*` to a CI robot's key; the robot signs only tags its pattern
//! covers, and consumers resolve them through the delegation.

use serde_json::Value;
use tagtrust_tests::{random_digest, Backend, Cli, TestServer};

const GUN: &str = "registry.example.com/acme/app";

#[test]
fn robot_signs_only_tags_its_delegation_covers() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let token = server.create_token(&["push:registry.example.com/acme/*"]);
        let publisher = Cli::new(&server.url).with_token(&token);
        publisher.ok(&["init", GUN]);

        // The robot makes its key pair and hands over the public half.
        let robot = Cli::new(&server.url).with_token(&token);
        let key_file = robot.home.path().join("robot.pem");
        let public_pem = robot.ok(&[
            "key",
            "generate",
            "ci-robot",
            "--out",
            key_file.to_str().unwrap(),
        ]);
        assert!(
            public_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
            "{public_pem}"
        );
        let pub_file = publisher.home.path().join("robot.pub.pem");
        std::fs::write(&pub_file, &public_pem).unwrap();

        publisher.ok(&[
            "delegation",
            "add",
            GUN,
            "ci-robot",
            "--key",
            pub_file.to_str().unwrap(),
            "--path",
            "release-*",
        ]);
        let list: Value =
            serde_json::from_str(&publisher.ok(&["delegation", "list", GUN, "-o", "json"]))
                .unwrap();
        assert_eq!(list[0]["name"], "ci-robot");
        assert_eq!(list[0]["paths"][0], "release-*");

        let (digest, size) = random_digest();
        let signed_as_robot = |tag: &str| {
            robot.run(&[
                "tag",
                "set",
                &format!("{GUN}:{tag}"),
                &digest,
                "--size",
                &size.to_string(),
                "--role",
                "ci-robot",
                "--key",
                key_file.to_str().unwrap(),
            ])
        };
        let out = signed_as_robot("release-1");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        let server = TestServer::spawn(backend);
        let token = server.create_token(&["push:registry.example.com/acme/*"]);
        let publisher = Cli::new(&server.url).with_token(&token);
        publisher.ok(&["init", GUN]);
        let robots: Vec<(String, Cli, std::path::PathBuf)> = ["a", "b"]
            .iter()
            .map(|name| {
                let robot = Cli::new(&server.url).with_token(&token);
                let key = robot.home.path().join("robot.pem");
                let public = robot.ok(&["key", "generate", name, "--out", key.to_str().unwrap()]);
                let public_file = publisher.home.path().join(format!("{name}.pub.pem"));
                std::fs::write(&public_file, public).unwrap();
                let pattern = format!("{name}-*");
                publisher.ok(&[
                    "delegation",
                    "add",
                    GUN,
                    &format!("robot-{name}"),
                    "--key",
                    public_file.to_str().unwrap(),
                    "--path",
                    &pattern,
                ]);
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
                                let (digest, size) = random_digest();
                                robot.ok(&[
                                    "tag",
                                    "set",
                                    &format!("{GUN}:{tag}"),
                                    &digest,
                                    "--size",
                                    &size.to_string(),
                                    "--role",
                                    &format!("robot-{name}"),
                                    "--key",
                                    key.to_str().unwrap(),
                                ]);
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
