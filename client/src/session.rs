//! Opening a repository: the home, the server, the HTTP settings every
//! request uses, trust established by [`crate::bootstrap`], then the
//! [`Updater`] brought up to date. Every operation (lookup, status,
//! history, list, publishing, staging, rotation) opens repositories through
//! a [`Session`].

use crate::bootstrap::{fetch_first_root, stored_root, Bootstrap, BootstrapError, TrustSource};
use crate::fetch::{FetchError, Fetcher, HttpFetcher, HttpOptions, OfflineFetcher};
use crate::freshness::{check_max_age, max_age_notice, offline_reference_time, FreshnessError};
use crate::home::{ConfigError, Home};
use crate::notices::Notices;
use crate::remote::{metadata_url, RemoteError, ServerClient};
use crate::updater::{RoleWalk, UpdateError, Updater, UpdaterConfig};
use std::path::PathBuf;
use std::time::Duration;
use tagtrust_shared::Gun;

/// One user's view of one server: where local state lives, the server,
/// the bearer token for it, the HTTP limits, where notices go. Settings
/// come from the caller (the CLI reads them from its environment); the
/// library reads none itself.
#[derive(Debug, Clone)]
pub struct Session {
    pub home: Home,
    /// The tagtrust server URL.
    pub server: String,
    /// Bearer token for the server (reads on servers that require `pull:`,
    /// and every write).
    pub token: Option<String>,
    /// Timeouts of every HTTP request (metadata, publishes, registries).
    /// Carries no credentials: the token is added for the server only.
    pub http: HttpOptions,
    pub notices: Notices,
}

/// What a consumer can ask of one open.
#[derive(Debug, Default, Clone)]
pub struct OpenOptions {
    /// Trust this root file for a GUN seen for the first time.
    pub root_file: Option<PathBuf>,
    /// Use only local trusted metadata; fetch nothing.
    pub offline: bool,
    /// Offline only: accept metadata expired at most this long ago.
    pub max_stale: Option<Duration>,
    /// Refuse a timestamp signed longer ago than this, even if unexpired.
    pub max_age: Option<Duration>,
}

/// A repository whose metadata has just been brought up to date and verified.
pub struct Repository {
    pub gun: Gun,
    pub updater: Updater<Box<dyn Fetcher>>,
    pub trust: TrustSource,
    /// Key IDs of the root role when trust was established now (not `Stored`).
    pub new_root_keyids: Vec<String>,
}

/// Why a repository could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The HTTP client could not be made.
    #[error(transparent)]
    Http(#[from] FetchError),

    #[error(transparent)]
    Bootstrap(Box<BootstrapError>),

    /// Offline, and nothing usable is stored.
    #[error("offline: no trusted metadata of {gun} from {server} yet: {source}")]
    OfflineNothingStored {
        gun: String,
        server: String,
        source: Box<BootstrapError>,
    },

    /// Offline, and the stored metadata does not verify (or has expired).
    #[error("offline: the local trusted metadata of {gun} cannot be used (give --max-stale to accept expired metadata): {source}")]
    OfflineUnusable {
        gun: String,
        source: Box<UpdateError>,
    },

    /// The update workflow refused or failed.
    #[error("updating trusted metadata of {gun} from {server}: {source}")]
    Update {
        gun: String,
        server: String,
        source: Box<UpdateError>,
    },

    #[error(transparent)]
    Freshness(#[from] FreshnessError),
}

// Boxed: a trust refusal is large, and every operation's error holds one.
impl From<BootstrapError> for OpenError {
    fn from(e: BootstrapError) -> Self {
        OpenError::Bootstrap(Box::new(e))
    }
}

/// Why a verified view of a repository could not be had: it could not be
/// opened, or its delegation tree could not be walked. The operations that
/// read a repository (status, history, list, every publish) wrap this one
/// error instead of listing both again.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Open(#[from] OpenError),

    #[error(transparent)]
    Update(#[from] UpdateError),
}

impl Session {
    /// Open `gun` and walk its whole delegation tree: every targets role a
    /// search could reach, verified, failing branches left out and listed.
    pub fn open_all_roles(&self, gun: &Gun) -> Result<(Repository, RoleWalk), ReadError> {
        let mut repo = self.open(gun, &OpenOptions::default())?;
        let walk = repo.updater.load_all_roles()?;
        Ok((repo, walk))
    }

    /// The fetcher of metadata reads: the session's limits, and the token.
    pub fn metadata_fetcher(&self) -> Result<HttpFetcher, FetchError> {
        let mut http = self.http.clone();
        if let Some(token) = &self.token {
            http = http.with_bearer_token(token);
        }
        HttpFetcher::new(http)
    }

    /// The server's write API.
    pub fn server_client(&self) -> Result<ServerClient, RemoteError> {
        ServerClient::with_http(&self.server, self.token.clone(), &self.http)
    }

    /// Directory of the trusted metadata of `gun` on this server.
    pub fn metadata_dir(&self, gun: &Gun) -> PathBuf {
        self.home.metadata_dir(&self.server, gun)
    }

    /// Establish trust in `gun` if needed, then run the TUF update workflow
    /// (offline: verify only what is stored).
    pub fn open(&self, gun: &Gun, options: &OpenOptions) -> Result<Repository, OpenError> {
        let dir = self.metadata_dir(gun);
        let base_url = metadata_url(&self.server, gun);
        let config = UpdaterConfig::default();
        if options.offline {
            let root = stored_root(&dir, gun)
                .and_then(|root| {
                    root.ok_or_else(|| BootstrapError::NoTrustedRoot(dir.join("root.json")))
                })
                .map_err(|source| OpenError::OfflineNothingStored {
                    gun: gun.to_string(),
                    server: self.server.clone(),
                    source: Box::new(source),
                })?;
            let fetcher = Box::new(OfflineFetcher) as Box<dyn Fetcher>;
            let mut updater = Updater::new(&dir, &base_url, fetcher, config, root);
            let reference_time = offline_reference_time(options.max_stale)?;
            updater
                .load_local(reference_time)
                .map_err(|source| OpenError::OfflineUnusable {
                    gun: gun.to_string(),
                    source: Box::new(source),
                })?;
            check_max_age(updater.trusted(), options.max_age)?;
            return Ok(Repository {
                gun: gun.clone(),
                updater,
                trust: TrustSource::Stored,
                new_root_keyids: Vec::new(),
            });
        }
        let fetcher = self.metadata_fetcher()?;
        let pin = self
            .home
            .config()?
            .pins
            .get(gun.as_str())
            .cloned()
            .unwrap_or_default();
        let trust = Bootstrap {
            gun,
            dir: &dir,
            pin: &pin,
            root_file: options.root_file.as_deref(),
            notices: &self.notices,
        }
        .establish(|| fetch_first_root(&fetcher, &base_url, config.root_max_length))?;
        let fetcher = Box::new(fetcher) as Box<dyn Fetcher>;
        let mut updater = Updater::new(&dir, &base_url, fetcher, config, trust.root);
        updater.refresh().map_err(|source| OpenError::Update {
            gun: gun.to_string(),
            server: self.server.clone(),
            source: Box::new(source),
        })?;
        if let Some(line) = max_age_notice(options.max_age, updater.server_timestamp_max_age()) {
            self.notices.push(line);
        }
        check_max_age(updater.trusted(), options.max_age)?;
        Ok(Repository {
            gun: gun.clone(),
            updater,
            trust: trust.source,
            new_root_keyids: trust.new_root_keyids,
        })
    }
}
