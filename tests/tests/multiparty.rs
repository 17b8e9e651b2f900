//! Multi-party root (threshold 2 of 3) and key export/import through the
//! real binaries; exported keys stay encrypted PKCS#8 that OpenSSL reads.

use tagtrust_tests::{json, random_digest, Backend, Cli, TestServer, TEST_PASSPHRASE};

const GUN: &str = "registry.example.com/acme/app";

#[test]
fn a_two_of_three_root_is_published_only_once_two_holders_signed() {
    let server = TestServer::spawn(Backend::Sqlite);
    let publisher = Cli::new(&server.url).with_token(&server.create_token(&["push:*"]));
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
    assert_eq!(init["root_signatures_needed"], 1);
    let root_ids: Vec<String> = init["root_key_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(root_ids.len(), 3);

    // Nothing is published yet.
    let consumer = Cli::new(&server.url);
    consumer.fails(&["lookup", &format!("{GUN}:latest")]);
    let err = publisher.fails(&["root", "publish", GUN]);
    assert!(err.contains("1 more needed"), "{err}");

    // The second holder's key travels encrypted (key export), and OpenSSL
    // can read it with the passphrase.
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
    assert!(
        openssl.status.success(),
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );

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

    // A key that is not a root key cannot sign the staged root.
    let stranger = dir.path().join("stranger.pem");
    holder.ok(&[
        "key",
        "generate",
        "stranger",
        "--out",
        stranger.to_str().unwrap(),
    ]);
    let err = publisher.fails(&["root", "sign", GUN, "--key", stranger.to_str().unwrap()]);
    assert!(err.contains("not a root key"), "{err}");

    let signed = json(&publisher.ok(&[
        "root",
        "sign",
        GUN,
        "--key",
        exported.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(signed["needed"], 0);
    assert_eq!(signed["signatures"], 2);
    let published = json(&publisher.ok(&["root", "publish", GUN, "-o", "json"]));
    assert_eq!(published["published"], true);

    let (d, s) = random_digest();
    publisher.ok(&[
        "tag",
        "set",
        &format!("{GUN}:latest"),
        &d,
        "--size",
        &s.to_string(),
    ]);
    assert_eq!(consumer.ok(&["lookup", &format!("{GUN}:latest")]).trim(), d);
    let root = json(
        &reqwest::blocking::get(format!("{}root.json", server.tuf_url(GUN)))
            .unwrap()
            .text()
            .unwrap(),
    );
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(root["signatures"].as_array().unwrap().len(), 2);
}
