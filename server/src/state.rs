//! What every request handler shares, and how it is made at start-up.

use crate::auth::external_issuer::ExternalIssuer;
use crate::auth::registry_token::RegistryTokens;
use crate::auth::Auth;
use crate::configuration::Settings;
use crate::gzip_cache::GzipCache;
use crate::kept_current::KeptRepositories;
use crate::metrics::Metrics;
use crate::online::keys::MasterKey;
use crate::online::Online;
use crate::storage::Storage;
use anyhow::Context;

pub(crate) struct AppState {
    pub(crate) settings: Settings,
    pub(crate) storage: Storage,
    /// Tagtrust tokens and registry bearer tokens.
    pub(crate) auth: Auth,
    pub(crate) master: MasterKey,
    pub(crate) metrics: Metrics,
    /// One permit per publish reading its body (`max_concurrent_uploads`).
    pub(crate) uploads: tokio::sync::Semaphore,
    /// Gzip copies of served files (`gzip_cache.rs`).
    pub(crate) gzip: GzipCache,
    /// What recent publishes left parsed, by GUN (`kept_current.rs`).
    pub(crate) kept: KeptRepositories,
}

impl AppState {
    /// Connect storage (running migrations) and load the master key.
    pub(crate) async fn load(settings: Settings) -> anyhow::Result<AppState> {
        let storage = Storage::connect(&settings).await?;
        if settings.database_url.is_some() {
            // The generated master key still lives in the data directory.
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!("creating data directory {}", settings.data_dir.display())
            })?;
        }
        let master = MasterKey::load_or_generate(
            settings.master_key.as_ref().map(|s| s.0.as_str()),
            &settings.data_dir,
        )?;
        let mut tokens = RegistryTokens::new(
            master.token_secret(),
            &settings.token_service,
            settings.token_ttl_secs,
        )
        .context("making the registry bearer token key")?;
        if let (Some(issuer), Some(bundle)) = (&settings.token_issuer, &settings.token_root_certs) {
            let service = &settings.token_service;
            let external =
                ExternalIssuer::load(issuer, service, bundle).map_err(anyhow::Error::msg)?;
            tokens = tokens.trusting(external);
        }
        Ok(AppState {
            uploads: tokio::sync::Semaphore::new(settings.max_concurrent_uploads),
            // Compressed copies are smaller than the files they copy: a
            // quarter of the immutable files' budget holds most of them.
            gzip: GzipCache::new(settings.file_cache_bytes / 4),
            // A 1,024-bin repository's entry is about 250 KB (its listing:
            // the snapshot's meta map, costed at about 200 bytes an entry),
            // a flat 10,000-tag one about 11.5 MB (`kept_current.rs`): a
            // quarter of the default budget keeps about sixty of the one,
            // or one of the other.
            kept: KeptRepositories::new(settings.file_cache_bytes / 4),
            auth: Auth::new(storage.clone(), tokens, settings.token_realm.clone()),
            settings,
            storage,
            master,
            metrics: Metrics::new(),
        })
    }

    /// The parts signing and re-signing the online roles use.
    pub(crate) fn online(&self) -> Online<'_> {
        Online {
            storage: &self.storage,
            master: &self.master,
            settings: &self.settings,
            metrics: &self.metrics,
        }
    }
}
