//! The registry token flow Notary clients speak (issue 11): `GET /v2/`
//! challenges with `WWW-Authenticate: Bearer realm=…,service=…`, the realm
//! `/auth/token` trades a tagtrust token (HTTP Basic password) for a
//! short-lived bearer JWT carrying that token's scopes for the GUN asked
//! for, and the JWT is accepted like a tagtrust token. Then the real
//! `notary` CLI (Debian's notary 0.7) through `NOTARY_AUTH`: it gets past
//! authentication, and `notary delete --remote` deletes a repository.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use tagtrust_tests::notary::{self_signed_certificate, Notary};
use tagtrust_tests::{base64, http, Backend, Cli, TestServer};

const GUN: &str = "example.com/acme/app";

/// A token from the realm of `server` for `scope`, with `password` as the
/// Basic password (none: anonymous): status and `token`.
fn realm_token(server: &TestServer, scope: &str, password: Option<&str>) -> (StatusCode, String) {
    let mut request = http().get(format!("{}/auth/token", server.url)).query(&[
        ("service", "tagtrust"),
        ("scope", scope),
        ("account", "ci"),
    ]);
    if let Some(password) = password {
        request = request.header(
            "Authorization",
            format!("Basic {}", base64(format!("ci:{password}").as_bytes())),
        );
    }
    let response = request.send().unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().unwrap_or_default();
    if status == StatusCode::OK {
        assert_eq!(body["token"], body["access_token"], "{body}");
        assert!(body["expires_in"].as_u64().unwrap() > 0, "{body}");
    }
    (
        status,
        body["token"].as_str().unwrap_or_default().to_string(),
    )
}

/// GET `url` with `bearer` (if any): status and `WWW-Authenticate`.
fn get(url: &str, bearer: Option<&str>) -> (StatusCode, String) {
    let mut request = http().get(url);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status(), challenge)
}

#[test]
fn the_ping_challenges_and_the_realm_grants_what_the_tagtrust_token_allows() {
    for backend in Backend::all() {
        let server = TestServer::spawn_with(backend, &["--token-service", "tagtrust"]);
        let push = server.create_token(&["push:example.com/acme/*"]);
        let pull = server.create_token(&["pull:example.com/*"]);
        let key_url = format!("{}timestamp.key", server.tuf_url(GUN));

        // The ping names the realm.
        let (status, challenge) = get(&format!("{}/v2/", server.url), None);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let realm = format!("{}/auth/token", server.url);
        assert_eq!(
            challenge,
            format!(r#"Bearer realm="{realm}",service="tagtrust",scope="registry:catalog:*""#)
        );
        assert_eq!(
            get(&format!("{}/v2/", server.url), Some(&push)).0,
            StatusCode::OK
        );

        // A write without credentials is challenged for its scope.
        let (status, challenge) = get(&key_url, None);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            challenge.ends_with(&format!(r#"scope="repository:{GUN}:push,pull""#)),
            "{challenge}"
        );

        // A push token's grant is push and pull; the JWT opens the ping and the write.
        let scope = format!("repository:{GUN}:push,pull");
        let (status, jwt) = realm_token(&server, &scope, Some(&push));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            get(&format!("{}/v2/", server.url), Some(&jwt)).0,
            StatusCode::OK
        );
        assert_eq!(get(&key_url, Some(&jwt)).0, StatusCode::OK);
        // ...for that GUN only.
        let other = format!("{}timestamp.key", server.tuf_url("example.com/acme/other"));
        let (status, challenge) = get(&other, Some(&jwt));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            challenge.contains(r#"error="insufficient_scope""#),
            "{challenge}"
        );

        // A pull token's grant is pull only: the write (making the first
        // key of a new repository) is challenged again.
        let fresh = "example.com/acme/fresh";
        let fresh_scope = format!("repository:{fresh}:push,pull");
        let (status, pull_jwt) = realm_token(&server, &fresh_scope, Some(&pull));
        assert_eq!(status, StatusCode::OK);
        let fresh_key = format!("{}timestamp.key", server.tuf_url(fresh));
        let (status, challenge) = get(&fresh_key, Some(&pull_jwt));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            challenge.contains(r#"error="insufficient_scope""#),
            "{challenge}"
        );

        // Anonymous: a pull-only grant, which cannot write.
        let (status, anonymous) = realm_token(&server, &fresh_scope, None);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            get(&fresh_key, Some(&anonymous)).0,
            StatusCode::UNAUTHORIZED
        );

        // A wrong password gets no token; a forged JWT opens nothing.
        let (status, token) = realm_token(&server, &scope, Some("tt_0000"));
        assert_eq!((status, token.as_str()), (StatusCode::UNAUTHORIZED, ""));
        // The same signature over other claims.
        let parts: Vec<&str> = jwt.split('.').collect();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let mut wider = claims.clone();
        wider["access"][0]["name"] = "example.com/acme/other".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wider).unwrap()),
            parts[2]
        );
        let (status, challenge) = get(&other, Some(&forged));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        // A token is not asked for more than 32 repositories at once.
        let many: Vec<(&str, String)> = (0..33)
            .map(|n| ("scope", format!("repository:example.com/r{n}:pull")))
            .collect();
        let response = http().get(&realm).query(&many).send().unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        // The global changefeed takes a catalog grant, which the realm
        // gives only a token that may pull every repository.
        let feed = format!("{}/v2/_trust/changefeed", server.url);
        let everything = server.create_token(&["pull:*"]);
        let (status, catalog) = realm_token(&server, "registry:catalog:*", Some(&everything));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(get(&feed, Some(&catalog)).0, StatusCode::OK);
        let (status, narrow) = realm_token(&server, "registry:catalog:*", Some(&pull));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(get(&feed, Some(&narrow)).0, StatusCode::FORBIDDEN);
        // Tokens for another service are not this realm's.
        let response = http()
            .get(&realm)
            .query(&[("service", "registry"), ("scope", scope.as_str())])
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn with_reads_restricted_an_anonymous_grant_reads_nothing() {
    let server = TestServer::spawn_with(Backend::Sqlite, &["--require-pull"]);
    let token = server.create_token(&["push:example.com/*"]);
    Cli::new(&server.url).with_token(&token).ok(&["init", GUN]);
    let url = format!("{}timestamp.json", server.tuf_url(GUN));
    let scope = format!("repository:{GUN}:pull");
    let (_, anonymous) = realm_token(&server, &scope, None);
    let (status, challenge) = get(&url, Some(&anonymous));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    let (_, jwt) = realm_token(&server, &scope, Some(&token));
    assert_eq!(get(&url, Some(&jwt)).0, StatusCode::OK);
}

#[test]
fn the_notary_cli_authenticates_through_the_realm_and_deletes_a_repository() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let admin = server.create_token(&["admin:example.com/*"]);
        let push = server.create_token(&["push:example.com/*"]);
        let as_push = Notary::new(&server.url, &push);
        let as_admin = Notary::new(&server.url, &admin);
        let as_stranger = Notary::new(&server.url, "tt_wrong");

        // Past authentication: the CLI learns there is no trust data yet
        // (not "offline", not "unauthorized").
        let said = as_push.fails(&["list", GUN]);
        assert!(
            said.contains(&format!("does not have trust data for {GUN}")),
            "{said}"
        );

        let publisher = Cli::new(&server.url).with_token(&admin);
        publisher.ok(&["init", GUN]);
        publisher.tag_set(GUN, "latest");
        let root = || {
            http()
                .get(format!("{}root.json", server.tuf_url(GUN)))
                .send()
                .unwrap()
                .status()
        };
        assert_eq!(root(), StatusCode::OK);

        // A push token may not delete (Notary asks for `*`): nothing changes.
        as_push.fails(&["delete", GUN, "--remote"]);
        assert_eq!(root(), StatusCode::OK);
        // A wrong password gets no token at all.
        as_stranger.fails(&["delete", GUN, "--remote"]);
        assert_eq!(root(), StatusCode::OK);

        // An admin token deletes it; deleting again is not an error.
        for _ in 0..2 {
            as_admin.ok(&["delete", GUN, "--remote"]);
            assert_eq!(root(), StatusCode::NOT_FOUND);
        }
    }
}

/// The test's registry token service (tests/python/token_issuer.py: ES256,
/// any user with password `secret`, anonymous users get pull only), naming
/// its key by `x5c` or `kid`; its base URL and process.
fn token_service(
    python: &std::path::Path,
    dir: &std::path::Path,
    key: &std::path::Path,
    cert: &std::path::Path,
    mode: &str,
) -> (String, tagtrust_tests::KillOnDrop) {
    let port = tagtrust_tests::free_port();
    let mut cmd = std::process::Command::new(python);
    cmd.arg(tagtrust_tests::tests_dir().join("python/token_issuer.py"))
        .arg(port.to_string())
        .args([key, cert])
        .arg(dir.join(format!("issuer-{mode}.jsonl")))
        .arg(mode);
    tagtrust_tests::serve(
        cmd,
        port,
        "/auth?service=probe",
        "token issuer",
        String::new,
    )
}

const ISSUER: &str = "tagtrust-test-issuer";

#[test]
fn an_existing_registry_token_service_authorises_trust_publishes_and_image_pushes() {
    let Some(python) = tagtrust_tests::python_with_tuf() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = self_signed_certificate(dir.path(), "token-issuer");
    // A service this server does not trust: same issuer name, another key.
    let (other_key, other_cert) = self_signed_certificate(dir.path(), "impostor");
    let cert_arg = cert.to_str().unwrap();
    for (backend, mode) in Backend::all().into_iter().zip(["x5c", "kid"]) {
        let (issuer, _issuer) = token_service(&python, dir.path(), &key, &cert, mode);
        let realm = format!("{issuer}/auth");
        let server = TestServer::spawn_with(
            backend,
            &[
                "--token-realm",
                &realm,
                "--token-service",
                "trust-test",
                "--token-issuer",
                ISSUER,
                "--token-root-certs",
                cert_arg,
            ],
        );
        // The notary CLI, sent to the service by the challenge, publishes.
        let publisher = Notary::new(&server.url, "secret");
        let work = tempfile::tempdir().unwrap();
        let manifest = work.path().join("manifest.json");
        std::fs::write(&manifest, b"{}").unwrap();
        publisher.ok(&["init", GUN]);
        publisher.ok(&["add", GUN, "v1", manifest.to_str().unwrap()]);
        publisher.ok(&["publish", GUN]);
        let reader = Notary::new(&server.url, "secret");
        assert!(reader.ok(&["list", GUN]).contains("v1"));
        // Refused by the service: no token, nothing changes.
        let timestamp = || {
            http()
                .get(format!("{}timestamp.json", server.tuf_url(GUN)))
                .send()
                .unwrap()
                .bytes()
                .unwrap()
        };
        let before = timestamp();
        let stranger = publisher.with_password("wrong");
        stranger.ok(&["add", GUN, "v2", manifest.to_str().unwrap()]);
        stranger.fails(&["publish", GUN]);
        assert_eq!(timestamp(), before);

        // Tokens for the server's service, by this issuer: its own are
        // accepted; an impostor's (same name, untrusted key), a token for
        // another service and an anonymous (pull-only) one cannot write.
        let new_gun = "example.com/acme/new";
        let token = |service_url: &str, service: &str, password: Option<&str>| -> String {
            let mut request = http().get(format!("{service_url}/auth")).query(&[
                ("service", service),
                ("scope", &format!("repository:{new_gun}:push,pull")),
            ]);
            if let Some(password) = password {
                request = request.basic_auth("ci", Some(password));
            }
            let body: serde_json::Value = request.send().unwrap().json().unwrap();
            body["token"].as_str().unwrap().to_string()
        };
        let (impostor, _impostor) =
            token_service(&python, dir.path(), &other_key, &other_cert, mode);
        // Making a new repository's first key needs push: the last one makes it.
        let key_url = format!("{}timestamp.key", server.tuf_url(new_gun));
        for (jwt, status) in [
            (
                token(&impostor, "trust-test", Some("secret")),
                StatusCode::UNAUTHORIZED,
            ),
            (
                token(&issuer, "registry-test", Some("secret")),
                StatusCode::UNAUTHORIZED,
            ),
            (token(&issuer, "trust-test", None), StatusCode::UNAUTHORIZED),
            (token(&issuer, "trust-test", Some("secret")), StatusCode::OK),
        ] {
            assert_eq!(get(&key_url, Some(&jwt)).0, status, "{jwt}");
        }

        // The same service authorises an image push to docker-registry.
        let push = {
            let request = http().get(format!("{issuer}/auth")).query(&[
                ("service", "registry-test"),
                ("scope", &format!("repository:{GUN}:push,pull")),
            ]);
            let body: serde_json::Value = request
                .basic_auth("ci", Some("secret"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            body["token"].as_str().unwrap().to_string()
        };
        let registry = tagtrust_tests::registry::TestRegistry::start_with_token_auth(
            &realm,
            "registry-test",
            ISSUER,
            &cert,
            &push,
        )
        .expect("docker-registry (.ci/run installs it)");
        let (_, digest) = registry.push_image(GUN, "v1", mode, &[]);
        assert!(digest.starts_with("sha256:"));
    }
}
