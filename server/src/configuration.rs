//! Command line, configuration file and environment, merged into one
//! [`Settings`]. Precedence (highest first): command-line flags,
//! `TAGTRUST_SERVER_*` environment variables, the TOML file given with
//! `--config`, built-in defaults.

use clap::{Args, Parser, Subcommand};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tagtrust_shared::TopLevelRole;

/// Everything the server and its subcommands need to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Directory for the SQLite database and the generated master key.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Base64 of 32 bytes; encrypts online keys at rest. Never logged.
    pub master_key: Option<Secret>,
    /// Lifetime of each timestamp the server signs.
    pub timestamp_expiry_secs: u64,
    /// Lifetime of each snapshot the server signs.
    pub snapshot_expiry_secs: u64,
    /// Lifetime of each hashed bin the server signs (repositories whose
    /// publisher let the server hold the bin key).
    pub bins_expiry_secs: u64,
    /// Most tags one `POST /_trust/tags` may change.
    pub max_tag_changes: usize,
    /// How often the re-sign scheduler looks for timestamps and snapshots
    /// that are due.
    pub resign_interval_secs: u64,
    /// Re-sign a server-signed role when less than this fraction of its
    /// configured lifetime remains (0 < f < 1).
    pub resign_margin_fraction: f64,
    /// Instead of the fraction: re-sign when fewer than this many seconds
    /// remain (must be less than both lifetimes).
    pub resign_margin_secs: Option<u64>,
    /// Re-sign the timestamp at least this often (seconds), whatever its
    /// expiry, so that clients may ask for recent timestamps (`max_age`).
    /// Published as `x-tagtrust-timestamp-max-age` (see
    /// `Settings::timestamp_max_age_secs`).
    pub timestamp_cadence_secs: u64,
    /// Require a `pull:` token for reads (and a `metrics:*` or `admin:*`
    /// token for `/metrics`).
    pub require_pull: bool,
    /// The `service` of registry bearer tokens: named in the
    /// `WWW-Authenticate` challenge and required as the JWT audience.
    pub token_service: String,
    /// The token realm the challenge sends clients to; `None`:
    /// `/auth/token` on the scheme and host the request named.
    pub token_realm: Option<String>,
    /// Seconds a bearer token from `/auth/token` lives.
    pub token_ttl_secs: u64,
    /// The `iss` of an existing registry token service whose JWTs are
    /// accepted too (with `token_root_certs`).
    pub token_issuer: Option<String>,
    /// PEM bundle of that service's root certificates.
    pub token_root_certs: Option<PathBuf>,
    /// The type of the online keys the server makes for Notary
    /// repositories: `ecdsa` (P-256, notary-signer's default) or `ed25519`.
    pub notary_key_type: String,
    /// Seconds a publish may take to send its body; slower is answered 408.
    pub body_timeout_secs: u64,
    /// Publishes reading their bodies at once; more are answered 503 with
    /// `Retry-After`.
    pub max_concurrent_uploads: usize,
    /// Largest request body accepted (publish).
    pub max_body_bytes: usize,
    /// Largest single metadata file in a publish.
    pub max_file_bytes: usize,
    /// Most files in one publish.
    pub max_parts: usize,
    /// Deepest JSON nesting accepted in uploaded metadata.
    pub max_json_depth: usize,
    /// Largest mirror import body (a repository's whole history, or what
    /// changed since the last sync).
    pub max_import_bytes: usize,
    /// Most files in one mirror import.
    pub max_import_files: usize,
    /// How long a current file may be served from memory (milliseconds; 0
    /// turns the read cache off): the bound on how long another process
    /// sharing the database may serve the previous version (invalidation
    /// is immediate in the process that committed, and on PostgreSQL by
    /// `NOTIFY` in the others).
    pub read_cache_ms: u64,
    /// Most metadata bytes the read cache holds.
    pub read_cache_bytes: usize,
    /// Most bytes of versioned and checksummed files kept in memory (they
    /// never change; least recently used go first; 0 turns it off).
    pub file_cache_bytes: usize,
    /// Roles expiring within this many seconds count as expiring in the
    /// `tagtrust_metadata_expiring_roles` metric.
    pub expiry_warning_secs: u64,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Fault injection for tests, 0 in production: wait up to this many
    /// milliseconds (at random) between adding a changefeed record and
    /// committing, which widens the window in which commits could overtake
    /// one another. The changefeed order test runs with it, so that it
    /// would catch a lost ordering guarantee instead of passing by luck.
    pub fault_changefeed_commit_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:4443".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            master_key: None,
            timestamp_expiry_secs: 24 * 60 * 60,
            snapshot_expiry_secs: 7 * 24 * 60 * 60,
            bins_expiry_secs: 365 * 24 * 60 * 60,
            max_tag_changes: 10_000,
            resign_interval_secs: 60,
            resign_margin_fraction: 0.5,
            resign_margin_secs: None,
            timestamp_cadence_secs: 30 * 60,
            require_pull: false,
            token_service: "tagtrust".into(),
            token_realm: None,
            token_ttl_secs: 300,
            token_issuer: None,
            token_root_certs: None,
            notary_key_type: "ecdsa".into(),
            body_timeout_secs: 30,
            max_concurrent_uploads: 32,
            max_body_bytes: 8 * 1024 * 1024,
            max_file_bytes: 4 * 1024 * 1024,
            // Enabling 1,024 hashed bins publishes 1,025 files at once.
            max_parts: 1100,
            max_json_depth: 64,
            log_format: "text".into(),
            fault_changefeed_commit_delay_ms: 0,
            max_import_bytes: 256 * 1024 * 1024,
            max_import_files: 100_000,
            read_cache_ms: 1000,
            read_cache_bytes: 64 * 1024 * 1024,
            file_cache_bytes: 64 * 1024 * 1024,
            expiry_warning_secs: 30 * 86_400,
        }
    }
}

/// A configured secret: its `Debug` form never shows the value, so logging
/// the settings cannot leak it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "tagtrust-server",
    version,
    about = "TUF trust metadata server for container image tags"
)]
pub struct Cli {
    #[command(flatten)]
    pub overrides: Overrides,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that override the file and environment (only when given).
#[derive(Debug, Default, Args, Serialize)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:4443].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Data directory [default: ./data].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (postgres://… or sqlite://…) [default: SQLite in the data directory].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Lifetime of signed timestamps in seconds [default: 86400].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_expiry_secs: Option<u64>,
    /// Lifetime of signed snapshots in seconds [default: 604800].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_expiry_secs: Option<u64>,
    /// Lifetime of server-signed hashed bins in seconds [default: 31536000, 365 days].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bins_expiry_secs: Option<u64>,
    /// Most tags one POST /_trust/tags may change [default: 10000].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tag_changes: Option<usize>,
    /// Seconds between passes of the re-sign scheduler [default: 60].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resign_interval_secs: Option<u64>,
    /// Re-sign timestamp/snapshot when less than this fraction of the
    /// lifetime remains [default: 0.5].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resign_margin_fraction: Option<f64>,
    /// Re-sign when fewer than this many seconds remain (overrides the fraction).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resign_margin_secs: Option<u64>,
    /// Re-sign the timestamp at least every this many seconds [default: 1800].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_cadence_secs: Option<u64>,
    /// Require a `pull:` token for reads (and `metrics:*` or `admin:*` for /metrics).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_pull: bool,
    /// The service named in registry token challenges, and the audience a
    /// bearer JWT must carry [default: tagtrust].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_service: Option<String>,
    /// The token realm URL named in challenges [default: /auth/token on the requested host].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_realm: Option<String>,
    /// Seconds a bearer token from /auth/token lives [default: 300].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl_secs: Option<u64>,
    /// The issuer (`iss`) of an existing registry token service whose JWTs are accepted too.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_issuer: Option<String>,
    /// PEM bundle of that token service's root certificates.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_root_certs: Option<PathBuf>,
    /// Online key type for Notary repositories: ecdsa (P-256) or ed25519 [default: ecdsa].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notary_key_type: Option<String>,
    /// Seconds a publish may take to send its body [default: 30].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_timeout_secs: Option<u64>,
    /// Publishes that may read their bodies at once [default: 32].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_uploads: Option<usize>,
    /// Largest request body in bytes [default: 8 MiB].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Largest uploaded metadata file in bytes [default: 4 MiB].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<usize>,
    /// Most files in one publish [default: 1100].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parts: Option<usize>,
    /// Log format: text or json [default: text].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// Largest mirror import body in bytes [default: 256 MiB].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_import_bytes: Option<usize>,
    /// Most files in one mirror import [default: 100000].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_import_files: Option<usize>,
    /// Serve current files from memory for at most this many ms; 0: off [default: 1000].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_cache_ms: Option<u64>,
    /// Most metadata bytes the read cache holds [default: 64 MiB].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_cache_bytes: Option<usize>,
    /// Most bytes of versioned and checksummed files kept in memory; 0: off [default: 64 MiB].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_cache_bytes: Option<usize>,
    /// Seconds before expiry a role counts as expiring in the metrics [default: 2592000, 30 days].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_warning_secs: Option<u64>,
    /// Tests only: delay commits after a changefeed record (see Settings).
    #[arg(long, global = true, hide = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_changefeed_commit_delay_ms: Option<u64>,
}

impl Settings {
    /// Lifetime of a server-signed role (timestamp or snapshot; the
    /// publisher sets the others' expiry).
    pub(crate) fn lifetime(&self, role: TopLevelRole) -> std::time::Duration {
        debug_assert!(role.is_online(), "the server does not sign {role}");
        std::time::Duration::from_secs(match role {
            TopLevelRole::Snapshot => self.snapshot_expiry_secs,
            _ => self.timestamp_expiry_secs,
        })
    }

    /// Re-sign `role` when less than this much of its life remains (the
    /// configured margin; for the timestamp see also
    /// [`Settings::timestamp_cadence`]).
    pub(crate) fn resign_margin(&self, role: TopLevelRole) -> std::time::Duration {
        match self.resign_margin_secs {
            Some(secs) => std::time::Duration::from_secs(secs),
            None => self.lifetime(role).mul_f64(self.resign_margin_fraction),
        }
    }

    /// Lifetime of a hashed bin the server signs.
    pub(crate) fn bins_lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.bins_expiry_secs)
    }

    /// Re-sign a server-held bin when less than this much of its life
    /// remains: the configured margin when it is shorter than the bins'
    /// lifetime, else the configured fraction of it.
    pub(crate) fn bins_resign_margin(&self) -> std::time::Duration {
        let lifetime = self.bins_lifetime();
        match self.resign_margin_secs {
            Some(secs) if std::time::Duration::from_secs(secs) < lifetime => {
                std::time::Duration::from_secs(secs)
            }
            _ => lifetime.mul_f64(self.resign_margin_fraction),
        }
    }

    /// The age at which the scheduler re-signs a timestamp: the configured
    /// cadence, or sooner when the expiry margin comes first.
    pub(crate) fn timestamp_cadence(&self) -> std::time::Duration {
        let by_margin = self
            .lifetime(TopLevelRole::Timestamp)
            .saturating_sub(self.resign_margin(TopLevelRole::Timestamp));
        std::time::Duration::from_secs(self.timestamp_cadence_secs).min(by_margin)
    }

    /// What `x-tagtrust-timestamp-max-age` promises: a healthy server's
    /// timestamp is never older than this (the cadence plus one scheduler
    /// pass), in whole seconds, rounded up.
    pub(crate) fn timestamp_max_age_secs(&self) -> u64 {
        let d =
            self.timestamp_cadence() + std::time::Duration::from_secs(self.resign_interval_secs);
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }

    /// Refuse settings under which the scheduler could not work: a zero
    /// lifetime or interval, or a margin that would re-sign on every pass.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for role in TopLevelRole::ONLINE {
            if self.lifetime(role).is_zero() {
                return Err(format!("{role}_expiry_secs must be at least 1"));
            }
        }
        if self.resign_interval_secs == 0 {
            return Err("resign_interval_secs must be at least 1".into());
        }
        if self.max_tag_changes == 0 {
            return Err("max_tag_changes must be at least 1".into());
        }
        // A server-held bin not due at one pass must be alive at the next.
        if self.bins_resign_margin() <= std::time::Duration::from_secs(self.resign_interval_secs) {
            return Err(format!(
                "a server-held bin could expire between two re-sign passes: bins_expiry_secs ({}s) \
                 leaves a re-sign margin no longer than resign_interval_secs ({}s)",
                self.bins_expiry_secs, self.resign_interval_secs
            ));
        }
        if self.resign_margin_secs.is_none()
            && !(self.resign_margin_fraction > 0.0 && self.resign_margin_fraction < 1.0)
        {
            return Err(format!(
                "resign_margin_fraction must be between 0 and 1 (exclusive), got {}",
                self.resign_margin_fraction
            ));
        }
        for role in TopLevelRole::ONLINE {
            let margin = self.resign_margin(role);
            if margin.is_zero() || margin >= self.lifetime(role) {
                return Err(format!(
                    "the re-sign margin ({}s) must be positive and less than the {role} lifetime ({}s)",
                    margin.as_secs_f64(),
                    self.lifetime(role).as_secs()
                ));
            }
            // A role not yet due at one pass must still be alive at the
            // next: its margin must exceed the interval between passes.
            if margin <= std::time::Duration::from_secs(self.resign_interval_secs) {
                return Err(format!(
                    "a {role} could expire between two re-sign passes: its re-sign margin ({}s of a {}s lifetime) \
                     must be longer than resign_interval_secs ({}s); lengthen {role}_expiry_secs or shorten resign_interval_secs",
                    margin.as_secs_f64(),
                    self.lifetime(role).as_secs(),
                    self.resign_interval_secs
                ));
            }
        }
        if self.timestamp_cadence_secs == 0 {
            return Err("timestamp_cadence_secs must be at least 1".into());
        }
        if self.token_issuer.is_some() != self.token_root_certs.is_some() {
            return Err("token_issuer and token_root_certs go together".into());
        }
        if !matches!(self.notary_key_type.as_str(), "ecdsa" | "ed25519") {
            return Err(format!(
                "notary_key_type must be ecdsa or ed25519, not {:?}",
                self.notary_key_type
            ));
        }
        if self.token_ttl_secs == 0 {
            return Err("token_ttl_secs must be at least 1".into());
        }
        if self.token_service.is_empty() || self.token_service.contains('"') {
            return Err("token_service must be a non-empty name without quotes".into());
        }
        if self.token_realm.as_deref().is_some_and(|r| r.contains('"')) {
            return Err("token_realm must be a URL without quotes".into());
        }
        if self.body_timeout_secs == 0 {
            return Err("body_timeout_secs must be at least 1".into());
        }
        if self.max_concurrent_uploads == 0 {
            return Err("max_concurrent_uploads must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Load an air-gapped export (`tagtrust export`): check every file
    /// against the manifest, verify each GUN like a transparent mirror sync
    /// and store it (nothing of a refused GUN is stored).
    Import {
        /// The export: a directory or FILE.tar
        #[arg(value_name = "DIR|FILE.tar")]
        source: PathBuf,
    },
    /// Copy Notary repositories from a running notary-server, every version
    /// of every role byte for byte, verified from root version 1; each is
    /// stored as a Notary repository awaiting `notary key rotate GUN
    /// timestamp -r` here (nothing of a refused GUN is stored; a GUN held
    /// here already is refused).
    ImportNotary {
        /// The notary-server's URL (`https://notary.example.com:4443`).
        #[arg(long, value_name = "URL")]
        from: String,
        /// Every GUN of the source's changefeed (not deleted).
        #[arg(long, conflicts_with = "guns")]
        all: bool,
        /// An environment variable whose value is sent as the
        /// `Authorization` header to the source (`Bearer …` from its token
        /// service, or `Basic …`).
        #[arg(long, value_name = "VAR")]
        auth_env: Option<String>,
        /// GUNs to import.
        #[arg(value_name = "GUN", required_unless_present = "all")]
        guns: Vec<String>,
    },
    /// List the Notary repositories imported from a notary-server that
    /// still await `notary key rotate GUN timestamp -r` here, with their
    /// timestamp's expiry (the deadline).
    NotaryPending {
        /// `text` (tab-separated, with a header) or `json`.
        #[arg(short, long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it once on stdout (only its hash is stored).
    Create {
        /// `pull:GLOB`, `push:GLOB` or `admin:GLOB` (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// A label for `token list`.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by ID.
    Revoke { id: String },
}

impl Overrides {
    /// Merge defaults, the config file, the environment and these flags.
    pub fn settings(&self) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = &self.config {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(Env::prefixed("TAGTRUST_SERVER_"))
            .merge(Serialized::defaults(self))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings these flags give (over the defaults and environment).
    fn parse(args: &[&str]) -> Settings {
        let mut all = vec!["tagtrust-server"];
        all.extend_from_slice(args);
        Cli::parse_from(all).overrides.settings().unwrap()
    }

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "tagtrust-server",
            "--data-dir",
            "/tmp/x",
            "token",
            "create",
            "--scope",
            "push:*",
        ]);
        let settings = cli.overrides.settings().unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(settings.listen, "127.0.0.1:4443");
        assert_eq!(settings.timestamp_expiry_secs, 86400);
        assert_eq!(settings.resign_interval_secs, 60);
        assert_eq!(
            settings.resign_margin(TopLevelRole::Timestamp),
            std::time::Duration::from_secs(43200)
        );
        settings.validate().unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Token(TokenCommand::Create { .. }))
        ));
    }

    #[test]
    fn config_file_is_read() {
        let dir = std::env::temp_dir().join(format!("tagtrust-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("server.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9\"\nsnapshot_expiry_secs = 5\n").unwrap();
        let cli = Cli::parse_from(["tagtrust-server", "--config", file.to_str().unwrap()]);
        let settings = cli.overrides.settings().unwrap();
        assert_eq!(settings.listen, "0.0.0.0:9");
        assert_eq!(settings.snapshot_expiry_secs, 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resign_settings_are_checked() {
        let s = parse(&[
            "--timestamp-expiry-secs",
            "3",
            "--resign-interval-secs",
            "1",
            "--resign-margin-fraction",
            "0.5",
        ]);
        s.validate().unwrap();
        assert_eq!(
            s.resign_margin(TopLevelRole::Timestamp),
            std::time::Duration::from_millis(1500)
        );
        let s = parse(&["--resign-margin-secs", "600"]);
        s.validate().unwrap();
        assert_eq!(s.resign_margin(TopLevelRole::Snapshot).as_secs(), 600);
        for bad in [
            vec!["--resign-margin-fraction", "1.0"],
            vec!["--resign-margin-fraction", "0"],
            vec!["--resign-interval-secs", "0"],
            vec![
                "--timestamp-expiry-secs",
                "60",
                "--resign-margin-secs",
                "60",
            ],
            vec!["--snapshot-expiry-secs", "0"],
            vec!["--timestamp-cadence-secs", "0"],
            vec!["--body-timeout-secs", "0"],
            vec!["--max-concurrent-uploads", "0"],
        ] {
            assert!(parse(&bad).validate().is_err(), "{bad:?}");
        }
    }

    /// A role whose re-sign margin is not longer than the interval between
    /// passes can expire between two passes: refused at start.
    #[test]
    fn roles_that_could_expire_between_passes_are_refused() {
        let err = parse(&[
            "--snapshot-expiry-secs",
            "20",
            "--resign-interval-secs",
            "600",
        ])
        .validate()
        .unwrap_err();
        assert!(
            err.contains("snapshot could expire between two re-sign passes"),
            "{err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
        let err = parse(&[
            "--timestamp-expiry-secs",
            "60",
            "--resign-interval-secs",
            "30",
        ])
        .validate()
        .unwrap_err();
        assert!(err.contains("timestamp could expire"), "{err}");
        // Margin 31 s > 30 s: every role is re-signed before it expires.
        parse(&[
            "--timestamp-expiry-secs",
            "62",
            "--resign-interval-secs",
            "30",
        ])
        .validate()
        .unwrap();
        parse(&["--resign-margin-secs", "61", "--resign-interval-secs", "60"])
            .validate()
            .unwrap();
        assert!(parse(&["--resign-margin-secs", "60"]).validate().is_err());
    }

    /// The cadence the server publishes: the configured one plus a pass, or
    /// the expiry margin's when that comes first.
    #[test]
    fn timestamp_max_age_is_cadence_plus_a_pass() {
        let defaults = Settings::default();
        defaults.validate().unwrap();
        assert_eq!(defaults.timestamp_cadence().as_secs(), 1800);
        // README: `--max-age 2h` and `max_age = "1h"` hold against defaults.
        assert_eq!(defaults.timestamp_max_age_secs(), 1860);
        let short = parse(&[
            "--timestamp-expiry-secs",
            "3",
            "--resign-interval-secs",
            "1",
        ]);
        assert_eq!(
            short.timestamp_cadence(),
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(short.timestamp_max_age_secs(), 3);
        let s = parse(&["--timestamp-cadence-secs", "600"]);
        assert_eq!(s.timestamp_max_age_secs(), 660);
    }
}
