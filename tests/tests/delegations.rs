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
