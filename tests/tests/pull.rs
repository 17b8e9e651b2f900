//! Verified pulls against a real OCI registry (Debian's `docker-registry`):
//! a publisher signs what the registry holds (`tag set --from-registry`), a
//! consumer pulls the manifest by the signed digest, and neither a tag moved
//! in the registry nor tampered bytes change what the consumer gets.
//!
//! The Bearer token flow is tested through [`AuthGate`], a loopback front
//! with a token realm in front of the real registry: configuring
//! `docker-registry` itself for token auth would need a JWT-signing
//! certificate chain in the test.

use serde_json::Value;
use tagtrust_tests::proxy::TamperingProxy;
use tagtrust_tests::registry::{sha256_digest, AuthGate, TestRegistry, OCI_MANIFEST};
use tagtrust_tests::{stderr, Backend, Cli, TestServer};

const NAME: &str = "acme/app";

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A registry, a tagtrust server, and a publisher who initialised the GUN
/// `127.0.0.1:PORT/acme/app` (PORT: the registry's).
struct Setup {
    registry: TestRegistry,
    server: TestServer,
    publisher: Cli,
    gun: String,
}

fn setup() -> Option<Setup> {
    let registry = TestRegistry::start()?;
    let server = TestServer::spawn(Backend::Sqlite);
    let gun = format!("{}/{NAME}", registry.host);
    let token = server.create_token(&[&format!("push:{}/acme/*", registry.host)]);
    let publisher = Cli::new(&server.url).with_token(&token);
    publisher.ok(&["init", &gun]);
    Some(Setup {
        registry,
        server,
        publisher,
        gun,
    })
}

/// The signed targets entry of `tag`, as the server serves it.
fn signed_target(server: &TestServer, gun: &str, tag: &str) -> Value {
    let url = format!("{}targets.json", server.tuf_url(gun));
    let body = reqwest::blocking::get(&url).unwrap().text().unwrap();
    json(&body)["signed"]["targets"][tag].clone()
}

#[test]
fn pull_returns_the_signed_manifest_even_after_the_registry_moves_the_tag() {
    let Some(s) = setup() else { return };
    let (manifest1, digest1) = s.registry.push_image(
        NAME,
        "1.0",
        "one",
        &[
            (
                "org.opencontainers.image.enc.keys.jwe",
                "eyJwcm90ZWN0ZWQiOiJ4In0",
            ),
            ("org.opencontainers.image.version", "1.0"),
        ],
    );
    let reference = format!("{}:1.0", s.gun);

    // The publisher signs what the registry holds, plus one annotation of
    // their own.
    let report = json(&s.publisher.ok(&[
        "tag",
        "set",
        &reference,
        "--from-registry",
        &s.registry.url,
        "--annotation",
        "com.example.reviewed=yes",
        "--output",
        "json",
    ]));
    assert_eq!(report["digest"], digest1.as_str());
    let target = signed_target(&s.server, &s.gun, "1.0");
    assert_eq!(target["length"], manifest1.len());
    assert_eq!(
        format!("sha256:{}", target["hashes"]["sha256"].as_str().unwrap()),
        digest1
    );
    // The default media type is left implicit (no bytes spent on it).
    assert_eq!(target["custom"].get("mediaType"), None);
    let annotations = &target["custom"]["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.enc.keys.jwe"],
        "eyJwcm90ZWN0ZWQiOiJ4In0"
    );
    assert_eq!(annotations["org.opencontainers.image.version"], "1.0");
    assert_eq!(annotations["com.example.reviewed"], "yes");

    // A consumer on another machine pulls: the registry comes from the GUN's
    // host, and stdout is exactly the manifest.
    let consumer = Cli::new(&s.server.url);
    let out = consumer.run(&["pull", &reference]);
    assert!(out.status.success(), "pull failed: {}", stderr(&out));
    assert_eq!(
        out.stdout, manifest1,
        "pull must print the exact manifest bytes"
    );
    assert!(stderr(&out).contains("on first use"), "{}", stderr(&out));

    // To a file, with a JSON report.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.json");
    let v = json(&consumer.ok(&[
        "pull",
        &reference,
        "--out",
        file.to_str().unwrap(),
        "--output",
        "json",
    ]));
    assert_eq!(std::fs::read(&file).unwrap(), manifest1);
    assert_eq!(v["digest"], digest1.as_str());
    assert_eq!(v["size"], manifest1.len());
    assert_eq!(v["media_type"], OCI_MANIFEST);
    assert_eq!(v["written_to"], file.to_str().unwrap());
    assert_eq!(v["repository"], NAME);
    assert_eq!(v["annotations"]["com.example.reviewed"], "yes");
    // JSON to stdout embeds the manifest.
    let v = json(&consumer.ok(&["pull", &reference, "--output", "json"]));
    assert_eq!(
        v["manifest"],
        json(&String::from_utf8(manifest1.clone()).unwrap())
    );
    assert!(v["written_to"].is_null());

    // Someone repoints the tag in the registry. The consumer still gets the
    // signed manifest: the tag is never resolved through the registry.
    let (manifest2, digest2) = s.registry.push_image(NAME, "1.0", "two", &[]);
    assert_ne!(digest1, digest2);
    let head = reqwest::blocking::Client::new()
        .head(format!("{}/v2/{NAME}/manifests/1.0", s.registry.url))
        .header("Accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(
        head.headers()["docker-content-digest"].to_str().unwrap(),
        digest2,
        "the registry should now serve the new manifest for the tag"
    );
    let out = consumer.run(&["pull", &reference]);
    assert!(out.status.success(), "pull failed: {}", stderr(&out));
    assert_eq!(out.stdout, manifest1);
    let out = consumer.run(&["pull", &reference, "--registry", &s.registry.url]);
    assert!(out.status.success(), "pull failed: {}", stderr(&out));
    assert_eq!(out.stdout, manifest1);

    // Once the publisher signs what is there now, consumers follow.
    s.publisher
        .ok(&["tag", "set", &reference, "--from-registry", &s.registry.url]);
    let target = signed_target(&s.server, &s.gun, "1.0");
    assert_eq!(target["length"], manifest2.len());
    assert!(
        target["custom"].get("annotations").is_none(),
        "the new manifest has no annotations: {target}"
    );
    let out = consumer.run(&["pull", &reference]);
    assert!(out.status.success(), "pull failed: {}", stderr(&out));
    assert_eq!(out.stdout, manifest2);
    assert_eq!(sha256_digest(&out.stdout), digest2);
}

#[test]
fn pull_refuses_tampered_manifests_and_writes_nothing() {
    let Some(s) = setup() else { return };
    let (manifest, digest) = s.registry.push_image(NAME, "stable", "good", &[]);
    let (other, _) = s.registry.push_image(NAME, "evil", "evil", &[]);
    let reference = format!("{}:stable", s.gun);
    s.publisher
        .ok(&["tag", "set", &reference, "--from-registry", &s.registry.url]);

    let proxy = TamperingProxy::start(&s.registry.url);
    let path = format!("/v2/{NAME}/manifests/{digest}");
    let consumer = Cli::new(&s.server.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.json");
    let pull = |expect: &str| {
        let out = consumer.run(&[
            "pull",
            &reference,
            "--registry",
            &proxy.url,
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "pull of tampered bytes succeeded");
        let err = stderr(&out);
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
        // A first-use notice may precede it; the error itself is one line.
        let error_lines = err.lines().filter(|l| !l.starts_with("notice:")).count();
        assert_eq!(error_lines, 1, "one-line error: {err}");
        assert!(out.stdout.is_empty(), "nothing on stdout");
        assert!(!file.exists(), "nothing may be written");
    };

    // Same length, one byte changed.
    let mut flipped = manifest.clone();
    let i = flipped.iter().position(|&b| b == b'2').unwrap();
    flipped[i] = b'3';
    proxy.serve(&path, 200, flipped);
    pull("does not match the signed digest");

    // A valid manifest of another image, served for the signed digest.
    proxy.serve(&path, 200, other);
    pull("does not match the signed digest");

    // The signed manifest with extra bytes (an endless-data attempt).
    let mut longer = manifest.clone();
    longer.extend(vec![b' '; 1 << 20]);
    proxy.serve(&path, 200, longer);
    pull("more than the signed");

    // Truncated.
    proxy.serve(&path, 200, manifest[..manifest.len() - 1].to_vec());
    pull("does not match the signed digest");

    // The registry lost it.
    proxy.serve(
        &path,
        404,
        b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}".to_vec(),
    );
    pull("registry has no manifest");

    // Untampered, the same pull works (the proxy forwards no Accept header,
    // so it is bypassed here; the registry is the same).
    let out = consumer.run(&[
        "pull",
        &reference,
        "--registry",
        &s.registry.url,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "pull failed: {}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), manifest);
}

#[test]
fn bearer_token_flow_for_pull_and_tag_set() {
    let Some(s) = setup() else { return };
    let (manifest, digest) = s.registry.push_image(NAME, "2.0", "gated", &[]);
    let reference = format!("{}:2.0", s.gun);
    let scope = format!("repository:{NAME}:pull");

    // A registry whose token realm wants credentials.
    let gate = AuthGate::start(&s.registry.url, &scope, Some(("robot", "s3cret")));
    let with_creds = |cli: &Cli, args: &[&str]| {
        cli.command()
            .args(args)
            .env("TAGTRUST_REGISTRY_USER", "robot")
            .env("TAGTRUST_REGISTRY_PASSWORD", "s3cret")
            .output()
            .unwrap()
    };

    // Without credentials the publisher is told what to set.
    let out = s
        .publisher
        .run(&["tag", "set", &reference, "--from-registry", &gate.url]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 401") && err.contains("TAGTRUST_REGISTRY_USER"),
        "{err}"
    );

    let out = with_creds(
        &s.publisher,
        &[
            "tag",
            "set",
            &reference,
            "--from-registry",
            &gate.url,
            "--output",
            "json",
        ],
    );
    assert!(out.status.success(), "tag set failed: {}", stderr(&out));
    assert_eq!(
        json(&String::from_utf8_lossy(&out.stdout))["digest"],
        digest.as_str()
    );

    let consumer = Cli::new(&s.server.url);
    let out = consumer.run(&["pull", &reference, "--registry", &gate.url]);
    assert!(!out.status.success(), "pull without credentials succeeded");
    assert!(
        stderr(&out).contains("TAGTRUST_REGISTRY_PASSWORD"),
        "{}",
        stderr(&out)
    );
    let issued = gate.tokens_issued.load(std::sync::atomic::Ordering::SeqCst);
    let out = with_creds(&consumer, &["pull", &reference, "--registry", &gate.url]);
    assert!(out.status.success(), "pull failed: {}", stderr(&out));
    assert_eq!(out.stdout, manifest);
    assert_eq!(
        gate.tokens_issued.load(std::sync::atomic::Ordering::SeqCst),
        issued + 1,
        "one token per pull"
    );

    // Wrong password: the realm refuses, so does pull.
    let out = consumer
        .command()
        .args(["pull", &reference, "--registry", &gate.url])
        .env("TAGTRUST_REGISTRY_USER", "robot")
        .env("TAGTRUST_REGISTRY_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));

    // A public registry: anonymous tokens.
    let public = AuthGate::start(&s.registry.url, &scope, None);
    let out = consumer.run(&["pull", &reference, "--registry", &public.url]);
    assert!(
        out.status.success(),
        "anonymous pull failed: {}",
        stderr(&out)
    );
    assert_eq!(out.stdout, manifest);
    assert_eq!(
        public
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert!(public.challenged.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[test]
fn tag_set_annotations_and_registry_errors() {
    let Some(s) = setup() else { return };
    // --annotation without a registry: signed as custom.annotations.
    let (manifest, digest) = s.registry.push_image(NAME, "3.0", "three", &[]);
    let reference = format!("{}:3.0", s.gun);
    s.publisher.ok(&[
        "tag",
        "set",
        &reference,
        &digest,
        "--size",
        &manifest.len().to_string(),
        "--annotation",
        "org.opencontainers.image.enc.keys.provider.kms=abc",
        "--annotation",
        "empty=",
    ]);
    let target = signed_target(&s.server, &s.gun, "3.0");
    assert_eq!(
        target["custom"]["annotations"]["org.opencontainers.image.enc.keys.provider.kms"],
        "abc"
    );
    assert_eq!(target["custom"]["annotations"]["empty"], "");
    // And the pull of an explicitly signed digest works the same.
    let out = Cli::new(&s.server.url).run(&["pull", &reference]);
    assert!(out.status.success(), "pull failed: {}", stderr(&out));
    assert_eq!(out.stdout, manifest);

    let err = s.publisher.fails(&[
        "tag",
        "set",
        &reference,
        &digest,
        "--size",
        "1",
        "--annotation",
        "novalue",
    ]);
    assert!(err.contains("KEY=VALUE"), "{err}");

    // A tag the registry does not have.
    let err = s.publisher.fails(&[
        "tag",
        "set",
        &format!("{}:missing", s.gun),
        "--from-registry",
        &s.registry.url,
    ]);
    assert!(
        err.contains("registry has no manifest") && err.contains("404"),
        "{err}"
    );

    // Digest and --from-registry together are refused.
    let err = s.publisher.fails(&[
        "tag",
        "set",
        &reference,
        &digest,
        "--from-registry",
        &s.registry.url,
    ]);
    assert!(err.contains("--from-registry"), "{err}");

    // Nothing signed for a tag: pull says so and does not ask the registry.
    let err = Cli::new(&s.server.url).fails(&["pull", &format!("{}:missing", s.gun)]);
    assert!(err.contains("not signed"), "{err}");
}
