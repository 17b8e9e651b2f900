//! Independent TUF clients read a repository that `tagtrust` published on
//! `tagtrust-server` and agree with `tagtrust lookup`: python-tuf's ngclient
//! (in the virtualenv scripts/test.sh creates) and tough's RepositoryLoader.

use tagtrust_tests::{
    ngclient_lookup, python_with_tuf, random_digest, succeeded, tough_targets, Backend, Cli,
    TestServer,
};

const GUN: &str = "registry.example.com/acme/heavylifter";

/// A published repository with `latest` moved once (so there are several
/// versions) and the publisher's trusted root file.
fn published_twice(server: &TestServer) -> (Cli, String, u64, std::path::PathBuf) {
    let (publisher, _) = Cli::publisher(server, "push:*", GUN);
    publisher.tag_set(GUN, "latest");
    let (digest, size) = random_digest();
    succeeded(&publisher.tag_set_digest(GUN, "latest", &digest, size, &[]));
    let root = publisher.trusted_dir(server, GUN).join("root.json");
    (publisher, digest, size, root)
}

#[test]
fn python_tuf_ngclient_agrees_with_tagtrust() {
    let Some(python) = python_with_tuf() else {
        return;
    };
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let (publisher, digest, size, root) = published_twice(&server);
        let ours: serde_json::Value = serde_json::from_str(&publisher.ok(&[
            "lookup",
            &format!("{GUN}:latest"),
            "--output",
            "json",
        ]))
        .unwrap();
        let theirs = ngclient_lookup(
            &python,
            &server.tuf_url(GUN),
            &root,
            "latest",
            &format!("the repository ({backend:?})"),
        );
        assert_eq!(
            format!("sha256:{}", theirs["sha256"].as_str().unwrap()),
            digest
        );
        assert_eq!(theirs["length"], size);
        assert_eq!(ours["digest"], digest.as_str());
        assert_eq!(ours["size"], theirs["length"]);
    }
}

#[test]
fn tough_repository_loader_agrees_with_tagtrust() {
    let server = TestServer::spawn(Backend::Sqlite);
    let (_publisher, digest, size, root) = published_twice(&server);
    let found = tough_targets(&std::fs::read(&root).unwrap(), &server.tuf_url(GUN));
    let (length, sha256) = found.get("latest").expect("tough finds latest");
    assert_eq!(*length, size);
    assert_eq!(format!("sha256:{sha256}"), digest);
}
