//! Opening a repository: the home, the server, the HTTP settings every
//! request uses, trust established by [`crate::bootstrap`], then the
//! [`Updater`] brought up to date. Every operation (lookup, status,
//! history, list, publishing, staging, rotation) opens repositories through
//! a [`Session`].

use crate::bootstrap::{fetch_first_root, stored_root, Bootstrap, BootstrapError, TrustSource};
use crate::cause::{holds_cause, Cause};
use crate::fetch::{FetchError, Fetcher, HttpFetcher, HttpOptions, OfflineFetcher};
use crate::freshness::{check_max_age, max_age_notice, offline_reference_time, FreshnessError};
use crate::home::Home;
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
    /// Read through the `[[mirror]]` locations config.toml maps this
    /// repository to (consumers); publishers read the server itself.
    pub use_mirrors: bool,
}

/// A repository whose metadata has just been brought up to date and verified.
pub struct Repository {
    pub gun: Gun,
    pub updater: Updater<Box<dyn Fetcher>>,
    pub trust: TrustSource,
    /// Key IDs of the root role when trust was established now (not `Stored`).
    pub new_root_keyids: Vec<String>,
    /// The location that answered: the server, or a `[[mirror]]` location
    /// (empty offline).
    pub location: String,
}

/// Why a repository could not be opened, or, once open, read.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
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

    /// Every mirror location failed; each one's reason.
    #[error("updating trusted metadata of {gun}: no location served it verifiably ({failures})")]
    NoLocation { gun: String, failures: String },

    /// The update workflow refused or failed.
    #[error("updating trusted metadata of {gun} from {server}: {source}")]
    Update {
        gun: String,
        server: String,
        source: Box<UpdateError>,
    },

    #[error(transparent)]
    Freshness(#[from] FreshnessError),

    /// Open, but its delegation tree could not be walked.
    #[error(transparent)]
    Walk(Box<UpdateError>),

    /// `config.toml` cannot be used, or the HTTP client could not be made.
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(OpenError);

// Boxed: a trust refusal is large, and every operation's error holds one.
impl From<BootstrapError> for OpenError {
    fn from(e: BootstrapError) -> Self {
        OpenError::Bootstrap(Box::new(e))
    }
}

impl From<UpdateError> for OpenError {
    fn from(e: UpdateError) -> Self {
        OpenError::Walk(Box::new(e))
    }
}

/// What the operations that read a repository (status, history, list,
/// every publish) fail with: it could not be opened, or its delegation
/// tree could not be walked ([`OpenError::Walk`]).
pub type ReadError = OpenError;

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
                location: String::new(),
            });
        }
        let home_config = self.home.config()?;
        let mapping = home_config
            .mirror_for(&self.server, gun.as_str())
            .filter(|_| options.use_mirrors);
        let locations: Vec<Location> = match mapping {
            Some(mapping) => mapping
                .locations
                .iter()
                .map(|url| self.location(url))
                .collect::<Result<_, _>>()?,
            None => vec![self.location(&self.server)?],
        };
        let max_stale = mapping.map(|m| m.max_stale()).transpose()?.flatten();
        let pin = home_config
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
        .establish(|| {
            let mut last = None;
            for location in &locations {
                match fetch_first_root(
                    &location.fetcher,
                    &location.base_url(gun),
                    config.root_max_length,
                ) {
                    Ok(root) => return Ok(root),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.expect("at least one location"))
        })?;
        let (updater, location) =
            self.update_from(gun, &dir, &locations, config, trust.root, max_stale)?;
        if let Some(line) = max_age_notice(options.max_age, updater.server_timestamp_max_age()) {
            self.notices.push(line);
        }
        check_max_age(updater.trusted(), options.max_age)?;
        Ok(Repository {
            gun: gun.clone(),
            updater,
            trust: trust.source,
            new_root_keyids: trust.new_root_keyids,
            location,
        })
    }

    /// Where to read from: the server itself (with the session's token), or
    /// a mirror location (without it: a token for the server is not the
    /// mirror's to see).
    fn location(&self, url: &str) -> Result<Location, FetchError> {
        let own = url.trim_end_matches('/') == self.server.trim_end_matches('/');
        let fetcher = if own {
            self.metadata_fetcher()?
        } else {
            HttpFetcher::new(self.http.clone())?
        };
        Ok(Location {
            url: url.to_string(),
            fetcher,
        })
    }

    /// Run the update workflow against each location in turn until one
    /// verifies, always over the same trusted state (`dir`): a location
    /// that is unreachable, or serves what fails verification (a rolled
    /// back mirror included), is skipped with a notice. With `max_stale`
    /// (the mapping's opt-in), if no location is fresh, the first whose
    /// metadata expired less than that long ago is accepted, loudly.
    fn update_from(
        &self,
        gun: &Gun,
        dir: &std::path::Path,
        locations: &[Location],
        config: UpdaterConfig,
        mut root: crate::trusted::VerifiedRoot,
        max_stale: Option<Duration>,
    ) -> Result<(Updater<Box<dyn Fetcher>>, String), OpenError> {
        let mut failures: Vec<(String, UpdateError)> = Vec::new();
        let mut expired: Vec<&Location> = Vec::new();
        for location in locations {
            let fetcher = Box::new(location.fetcher.clone()) as Box<dyn Fetcher>;
            let mut updater =
                Updater::new(dir, &location.base_url(gun), fetcher, config.clone(), root);
            match updater.refresh() {
                Ok(()) => return Ok((updater, location.url.clone())),
                Err(e) => {
                    root = updater.trusted().verified_root();
                    if matches!(
                        e,
                        UpdateError::Trust(crate::trusted::TrustError::Expired { .. })
                    ) {
                        expired.push(location);
                    }
                    if locations.len() > 1 {
                        self.notices.push(format!(
                            "skipping {} for {gun}: {}",
                            location.url,
                            crate::error_line::error_line(&e)
                        ));
                    }
                    failures.push((location.url.clone(), e));
                }
            }
        }
        if let Some(grace) = max_stale {
            let reference_time = chrono::Utc::now()
                - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
            for location in expired {
                let fetcher = Box::new(location.fetcher.clone()) as Box<dyn Fetcher>;
                let mut updater =
                    Updater::new(dir, &location.base_url(gun), fetcher, config.clone(), root);
                match updater.refresh_as_of(reference_time) {
                    Ok(()) => {
                        self.notices.push(format!(
                            "WARNING: {gun} from {} is stale: its metadata has expired; accepted because mirror.max_stale allows {} (no location served fresh metadata)",
                            location.url,
                            humantime::format_duration(grace)
                        ));
                        return Ok((updater, location.url.clone()));
                    }
                    Err(_) => root = updater.trusted().verified_root(),
                }
            }
        }
        if failures.len() == 1 {
            let (server, source) = failures.pop().expect("one failure");
            return Err(OpenError::Update {
                gun: gun.to_string(),
                server,
                source: Box::new(source),
            });
        }
        Err(OpenError::NoLocation {
            gun: gun.to_string(),
            failures: failures
                .iter()
                .map(|(url, e)| format!("{url}: {}", crate::error_line::error_line(e)))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}

/// One place metadata is read from, with its fetcher.
struct Location {
    url: String,
    fetcher: HttpFetcher,
}

impl Location {
    fn base_url(&self, gun: &Gun) -> String {
        metadata_url(&self.url, gun)
    }
}
