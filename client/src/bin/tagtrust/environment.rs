//! What the `tagtrust` CLI takes from its environment and terminal and hands
//! to the library as options: the home directory, the server token, HTTP
//! timeouts, registry credentials, passphrases (`TAGTRUST_PASSPHRASE`, else
//! a prompt) and where notices are printed. The library reads none of it
//! itself.

use anyhow::{Context, Result};
use std::path::PathBuf;
use tagtrust::fetch::HttpOptions;
use tagtrust::home::Home;
use tagtrust::notices::Notices;
use tagtrust::passphrase::{PassphraseError, PassphraseSource};
use tagtrust::registry::{PASSWORD_ENV, USER_ENV};
use tagtrust::session::Session;

/// `TAGTRUST_HOME`, else `~/.tagtrust`.
pub fn home() -> Result<Home> {
    let root = match std::env::var_os("TAGTRUST_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::home_dir()
            .context("cannot find the home directory; set TAGTRUST_HOME")?
            .join(".tagtrust"),
    };
    Ok(Home::at(root))
}

/// `TAGTRUST_TOKEN`: the bearer token for the server, if set.
pub fn token() -> Option<String> {
    std::env::var("TAGTRUST_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
}

/// `TAGTRUST_UPSTREAM_TOKEN`: the bearer token `mirror sync` reads its
/// upstream with, if set.
pub fn upstream_token() -> Option<String> {
    std::env::var("TAGTRUST_UPSTREAM_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
}

/// The HTTP limits: the defaults, with `TAGTRUST_HTTP_TIMEOUT_SECS` (whole
/// seconds, one or more) as the whole-request limit, for slow links and
/// for the slow-retrieval attack test.
pub fn http_options() -> HttpOptions {
    let mut http = HttpOptions::default();
    if let Some(secs) = std::env::var("TAGTRUST_HTTP_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
    {
        http.timeout = std::time::Duration::from_secs(secs);
    }
    http
}

/// Registry credentials from `TAGTRUST_REGISTRY_USER` and
/// `TAGTRUST_REGISTRY_PASSWORD`, if a user is set.
pub fn registry_credentials() -> Option<(String, String)> {
    let user = std::env::var(USER_ENV).ok().filter(|u| !u.is_empty())?;
    let password = std::env::var(PASSWORD_ENV).unwrap_or_default();
    Some((user, password))
}

/// The session of one command against `server`.
pub fn session(home: &Home, server: String, notices: &Notices) -> Session {
    Session {
        home: home.clone(),
        server,
        token: token(),
        http: http_options(),
        notices: notices.clone(),
    }
}

/// The passphrase for private keys: `TAGTRUST_PASSPHRASE`, else a prompt on
/// the terminal. With neither, a one-line error rather than a hang.
pub struct TerminalPassphrase;

impl PassphraseSource for TerminalPassphrase {
    fn passphrase(&self, prompt: &str) -> Result<String, PassphraseError> {
        use std::io::IsTerminal;
        if let Ok(p) = std::env::var("TAGTRUST_PASSPHRASE") {
            return Ok(p);
        }
        if !std::io::stdin().is_terminal() {
            return Err(PassphraseError(
                "no passphrase: set TAGTRUST_PASSPHRASE or run on a terminal".into(),
            ));
        }
        let p = rpassword::prompt_password(prompt)
            .map_err(|e| PassphraseError(format!("reading passphrase: {e}")))?;
        if p.is_empty() {
            return Err(PassphraseError("empty passphrase".into()));
        }
        Ok(p)
    }
}

/// Notary key passphrases the way `notary` reads them:
/// `NOTARY_ROOT_PASSPHRASE`, `NOTARY_TARGETS_PASSPHRASE`,
/// `NOTARY_SNAPSHOT_PASSPHRASE`, `NOTARY_DELEGATION_PASSPHRASE` for a
/// `targets/…` role, else a prompt on the terminal.
pub struct NotaryPassphrase;

impl tagtrust::notary_migrate::NotaryPassphrases for NotaryPassphrase {
    fn passphrase(&self, role: &str, key_id: &str) -> Result<String, PassphraseError> {
        use std::io::IsTerminal;
        let variable = match role {
            "root" | "targets" | "snapshot" => format!("NOTARY_{}_PASSPHRASE", role.to_uppercase()),
            _ => "NOTARY_DELEGATION_PASSPHRASE".to_string(),
        };
        if let Ok(p) = std::env::var(&variable) {
            return Ok(p);
        }
        if !std::io::stdin().is_terminal() {
            return Err(PassphraseError(format!(
                "no passphrase for the Notary {} key {key_id}: set {variable} or run on a terminal",
                tagtrust::terminal::escape(role)
            )));
        }
        rpassword::prompt_password(format!(
            "Passphrase for the Notary {} key {key_id}: ",
            tagtrust::terminal::escape(role)
        ))
        .map_err(|e| PassphraseError(format!("reading passphrase: {e}")))
    }
}
