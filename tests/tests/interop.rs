//! Independent TUF clients read a repository that `tagtrust` published on
//! `tagtrust-server` and agree with `tagtrust lookup`: python-tuf's ngclient
//! (in the virtualenv scripts/test.sh creates) and tough's RepositoryLoader.

use tagtrust_tests::{
    ngclient_lookup, python_with_tuf, random_digest, succeeded, Backend, Cli, TestServer,
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
    let root_bytes = std::fs::read(&root).unwrap();
    let base = url::Url::parse(&server.tuf_url(GUN)).unwrap();
    let datastore = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let repo = rt
        .block_on(
            // tough never re-reads a stored root: the caller passes the
            // trusted root each time (here, the publisher's).
            tough::RepositoryLoader::new(&root_bytes, base.clone(), base)
                .datastore(datastore.path())
                .load(),
        )
        .expect("tough loads the repository");
    let (_, target) = repo
        .targets()
        .signed
        .targets_iter()
        .find(|(name, _)| name.raw() == "latest")
        .expect("tough finds latest");
    assert_eq!(target.length, size);
    assert_eq!(
        format!("sha256:{}", hex::encode(&target.hashes.sha256)),
        digest
    );
}
