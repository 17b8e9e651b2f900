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
use tagtrust_tests::notary::Notary;
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
