//! Registry bearer tokens: the token authentication of Docker's registry,
//! which Notary clients speak. tagtrust-server is its own token realm: a
//! client that gets `401` with `WWW-Authenticate: Bearer realm=…,service=…,
//! scope="repository:GUN:push,pull"` asks `GET /auth/token` for a token,
//! with a tagtrust token as the HTTP Basic password (any user name), and
//! gets a short-lived JWT granting what that tagtrust token allows of the
//! scope it asked for (anonymous: `pull`, unless reads need a token). The
//! JWT is then accepted as a bearer token like a tagtrust token.
//!
//! The JWTs are HS256, signed with a secret derived from the master key, so
//! every process on one database accepts every other's. A revoked tagtrust
//! token's JWTs stay valid until they expire (`token_ttl_secs`, 5 minutes).

use super::scopes::{scopes_allow, Action};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tagtrust_shared::Gun;

/// The `iss` of the tokens this server issues.
const ISSUER: &str = "tagtrust-server";

/// A JWT's claims (the registry token specification's, plus `tid`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    /// Who asked: the Basic user name, or `anonymous`.
    #[serde(default)]
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: i64,
    #[serde(default)]
    pub(crate) nbf: i64,
    #[serde(default)]
    pub(crate) iat: i64,
    #[serde(default)]
    pub(crate) jti: String,
    #[serde(default)]
    pub(crate) access: Vec<Access>,
    /// The ID of the tagtrust token it was issued for (none: anonymous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tid: Option<String>,
}

/// One granted resource: `{"type":"repository","name":GUN,"actions":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Access {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) actions: Vec<String>,
}

/// A registry action as tagtrust's: `pull`, `push`, and `*` (what Notary
/// asks for to delete a repository or rotate a server key) as `admin`.
fn action_of(registry_action: &str) -> Option<Action> {
    match registry_action {
        "pull" => Some(Action::Pull),
        "push" => Some(Action::Push),
        "*" => Some(Action::Admin),
        _ => None,
    }
}

/// The registry actions a challenge for `action` asks for.
pub(crate) fn registry_actions(action: Action) -> &'static str {
    match action {
        Action::Pull => "pull",
        Action::Push => "push,pull",
        Action::Admin => "*",
    }
}

/// A requested scope, `repository:GUN:ACTIONS` (other resource types and
/// malformed scopes are `None`: granted nothing).
pub(crate) fn parse_scope(scope: &str) -> Option<(Gun, Vec<String>)> {
    let rest = scope.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    let gun = Gun::parse(name).ok()?;
    let actions = actions
        .split(',')
        .filter(|a| action_of(a).is_some())
        .map(str::to_string)
        .collect();
    Some((gun, actions))
}

/// What of `requested` the tagtrust `scopes` allow (`None`: anonymous,
/// allowed `pull` when `anonymous_pull`).
pub(crate) fn grant(
    requested: &[(Gun, Vec<String>)],
    scopes: Option<&[String]>,
    anonymous_pull: bool,
) -> Vec<Access> {
    requested
        .iter()
        .map(|(gun, actions)| {
            let allowed = |a: &String| match (scopes, action_of(a)) {
                (Some(scopes), Some(action)) => scopes_allow(scopes, action, gun.as_str()),
                (None, Some(Action::Pull)) => anonymous_pull,
                _ => false,
            };
            Access {
                kind: "repository".into(),
                name: gun.to_string(),
                actions: actions.iter().filter(|a| allowed(a)).cloned().collect(),
            }
        })
        .filter(|access| !access.actions.is_empty())
        .collect()
}

/// The registry scope that names every repository: Docker's registry lists
/// its catalog with it, notary-server answers its global changefeed to it.
pub(crate) const CATALOG_SCOPE: &str = "registry:catalog:*";
/// A catalog grant among a caller's scopes (no tagtrust token has it: it
/// comes from a JWT only, and allows the global changefeed, nothing else).
pub(crate) const CATALOG: &str = "catalog:*";

/// The catalog access a caller with tagtrust `scopes` may be granted: one
/// whose scopes may pull every repository (what the whole global feed
/// shows it anyway).
pub(crate) fn grant_catalog(scopes: &[String]) -> Option<Access> {
    super::pull_globs(scopes).contains(&"*").then(|| Access {
        kind: "registry".into(),
        name: "catalog".into(),
        actions: vec!["*".into()],
    })
}

/// The tagtrust scopes a verified JWT's `access` amounts to (exact GUNs;
/// [`CATALOG`] for `registry:catalog:*`).
pub(crate) fn scopes_of(claims: &Claims) -> Vec<String> {
    let catalog = claims
        .access
        .iter()
        .any(|a| a.kind == "registry" && a.name == "catalog" && a.actions.iter().any(|x| x == "*"))
        .then(|| CATALOG.to_string());
    claims
        .access
        .iter()
        .filter(|a| a.kind == "repository" && Gun::parse(&a.name).is_ok())
        .flat_map(|a| {
            a.actions.iter().filter_map(|action| {
                let granted = match action_of(action)? {
                    Action::Pull => "pull",
                    Action::Push => "push",
                    Action::Admin => "admin",
                };
                Some(format!("{granted}:{}", a.name))
            })
        })
        .chain(catalog)
        .collect()
}

/// Issues and verifies this server's registry bearer tokens.
pub(crate) struct RegistryTokens {
    /// A registry token service whose tokens are accepted too.
    external: Option<super::external_issuer::ExternalIssuer>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    service: String,
    ttl_secs: i64,
}

/// An issued token, as `/auth/token` answers it.
#[derive(Debug, Serialize)]
pub(crate) struct IssuedToken {
    pub(crate) token: String,
    /// The same token: OAuth2-style clients read this name.
    pub(crate) access_token: String,
    pub(crate) expires_in: i64,
    pub(crate) issued_at: String,
}

impl RegistryTokens {
    pub(crate) fn new(
        secret: &[u8; 32],
        service: &str,
        ttl_secs: u64,
    ) -> Result<RegistryTokens, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[service]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        Ok(RegistryTokens {
            external: None,
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            validation,
            service: service.to_string(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        })
    }

    /// Accept the tokens of `issuer` too.
    pub(crate) fn trusting(mut self, issuer: super::external_issuer::ExternalIssuer) -> Self {
        self.external = Some(issuer);
        self
    }

    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// A token for `subject` granting `access`, issued now.
    pub(crate) fn issue(
        &self,
        subject: &str,
        token_id: Option<&str>,
        access: Vec<Access>,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: self.service.clone(),
            exp: now.timestamp().saturating_add(self.ttl_secs),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: hex::encode(rand::random::<[u8; 16]>()),
            access,
            tid: token_id.map(str::to_string),
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken {
            access_token: jwt.clone(),
            token: jwt,
            expires_in: self.ttl_secs,
            issued_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    /// The claims of `jwt` if this server issued it for its service, or the
    /// trusted external token service did, and it is within its lifetime.
    pub(crate) fn verify(&self, jwt: &str) -> Result<Claims, String> {
        if let Some(external) = &self.external {
            if unverified_issuer(jwt).as_deref() == Some(external.issuer()) {
                return external.verify(jwt);
            }
        }
        jsonwebtoken::decode::<Claims>(jwt, &self.decoding, &self.validation)
            .map(|t| t.claims)
            .map_err(|e| e.to_string())
    }
}

/// The `iss` a JWT claims, before anything is verified: it says only which
/// issuer's key to verify it with.
fn unverified_issuer(jwt: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Issuer>(&bytes).ok().map(|c| c.iss)
}

/// Does `bearer` look like a JWT (three base64url parts) rather than a
/// tagtrust token?
pub(crate) fn is_jwt(bearer: &str) -> bool {
    bearer.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(service: &str) -> RegistryTokens {
        RegistryTokens::new(&[7; 32], service, 300).unwrap()
    }

    fn requested(scope: &str) -> Vec<(Gun, Vec<String>)> {
        parse_scope(scope).into_iter().collect()
    }

    #[test]
    fn scopes_parse_the_registry_way() {
        let (gun, actions) = parse_scope("repository:example.com/acme/app:push,pull").unwrap();
        assert_eq!(gun.as_str(), "example.com/acme/app");
        assert_eq!(actions, ["push", "pull"]);
        assert_eq!(
            parse_scope("repository:localhost:5000/app:*").unwrap().1,
            ["*"]
        );
        assert!(parse_scope("registry:catalog:*").is_none());
        assert!(parse_scope("repository:../x:pull").is_none());
        assert_eq!(
            parse_scope("repository:a/b:delete,frob").unwrap().1,
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_grant_is_what_the_tagtrust_token_allows_of_what_was_asked() {
        let asked = requested("repository:acme/app:push,pull");
        let push = vec!["push:acme/*".to_string()];
        let pull = vec!["pull:acme/*".to_string()];
        let other = vec!["admin:other/*".to_string()];
        assert_eq!(
            grant(&asked, Some(&push), false)[0].actions,
            ["push", "pull"]
        );
        assert_eq!(grant(&asked, Some(&pull), false)[0].actions, ["pull"]);
        assert!(grant(&asked, Some(&other), false).is_empty());
        assert_eq!(grant(&asked, None, true)[0].actions, ["pull"]);
        assert!(grant(&asked, None, false).is_empty());
        let star = requested("repository:acme/app:*");
        assert!(grant(&star, Some(&push), false).is_empty());
        assert_eq!(
            grant(&star, Some(&["admin:*".to_string()]), false)[0].actions,
            ["*"]
        );
    }

    #[test]
    fn an_issued_token_verifies_and_carries_exact_scopes() {
        let t = tokens("tagtrust");
        let access = grant(
            &requested("repository:acme/app:*"),
            Some(&["admin:acme/*".to_string()]),
            false,
        );
        let issued = t.issue("ci", Some("abc"), access).unwrap();
        assert!(is_jwt(&issued.token));
        let claims = t.verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "ci");
        assert_eq!(claims.tid.as_deref(), Some("abc"));
        assert_eq!(scopes_of(&claims), ["admin:acme/app"]);
    }

    #[test]
    fn the_catalog_is_granted_only_to_a_token_that_may_pull_everything() {
        let t = tokens("tagtrust");
        assert!(grant_catalog(&["pull:acme/*".to_string()]).is_none());
        // Push and admin scopes pull too (`pull_globs`).
        assert!(grant_catalog(&["push:*".to_string()]).is_some());
        let catalog = grant_catalog(&["pull:*".to_string()]).unwrap();
        let issued = t.issue("mirror", None, vec![catalog]).unwrap();
        assert_eq!(scopes_of(&t.verify(&issued.token).unwrap()), [CATALOG]);
        // Only `*` on `registry:catalog` is the catalog.
        let partial = Access {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["pull".into()],
        };
        let issued = t.issue("mirror", None, vec![partial]).unwrap();
        assert!(scopes_of(&t.verify(&issued.token).unwrap()).is_empty());
    }

    #[test]
    fn tokens_for_another_service_or_key_or_tampered_are_refused() {
        let issued = tokens("tagtrust").issue("ci", None, Vec::new()).unwrap();
        assert!(tokens("registry").verify(&issued.token).is_err());
        let other_key = RegistryTokens::new(&[8; 32], "tagtrust", 300).unwrap();
        assert!(other_key.verify(&issued.token).is_err());
        let mut forged = issued.token.clone();
        forged.insert(forged.rfind('.').unwrap() + 1, 'A');
        assert!(tokens("tagtrust").verify(&forged).is_err());
        assert!(!is_jwt("tt_0123"));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let t = tokens("tagtrust");
        let mut claims_token = t.issue("ci", None, Vec::new()).unwrap().token;
        // Re-sign the same claims with exp in the past.
        let mut claims = t.verify(&claims_token).unwrap();
        claims.exp = claims.iat - 10;
        claims.nbf = claims.iat - 20;
        claims_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &t.encoding).unwrap();
        assert!(t.verify(&claims_token).is_err());
    }
}
