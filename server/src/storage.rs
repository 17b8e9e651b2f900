//! Storage: one implementation over `sqlx::AnyPool` for both backends
//! (SQLite, the embedded default, and PostgreSQL), with one migration
//! folder per backend. Only BIGINT, TEXT and BLOB/BYTEA columns and `$N`
//! placeholders are used, which both engines understand the same way.
//!
//! Writes to one repository serialise on its `repositories` row: the first
//! statements of every write transaction insert-if-missing and then bump
//! `lock_seq`. In PostgreSQL that row-locks until commit; in SQLite a write
//! as the *first* statement takes the database write lock at once (waiting
//! through `busy_timeout`), which avoids the deadlock of a deferred
//! transaction that reads first and then tries to upgrade.

use crate::cache::ReadCache;
use crate::changefeed::{ChangeCategory, ChangeRecord, Cursor, FeedQuery, FeedScope};
use crate::configuration::Settings;
use crate::file_cache::{FileCache, FileKey};
use crate::online::keys::KeyRole;
use anyhow::Context;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tagtrust_shared::{PublicKey, TopLevelRole};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// How long [`Storage::checkpoint_in_background`] gathers commits before
/// checkpointing them together.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Name of the SQLite database file in the data directory.
pub const SQLITE_FILE: &str = "tagtrust.db";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached or is too busy: worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Stored data that does not parse (should never happen).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StorageError::Unavailable(e),
            sqlx::Error::Database(db)
                if database_unavailable(db.code().as_deref(), db.message()) =>
            {
                StorageError::Unavailable(e)
            }
            _ => StorageError::Database(e),
        }
    }
}

/// Does an error the database returned mean it cannot serve us right now
/// (worth a 503 and a retry), rather than a problem with the request or the
/// data? PostgreSQL by SQLSTATE: connection exceptions (class 08), the
/// server shutting down or terminating our session (57P01-57P03), too many
/// connections (53300), and a database not accepting connections (55000 with
/// that message, e.g. `ALLOW_CONNECTIONS false`). SQLite by its fixed
/// result strings: busy or locked, read-only, disk full, cannot open, I/O.
fn database_unavailable(code: Option<&str>, message: &str) -> bool {
    const SQLITE: [&str; 6] = [
        "database is locked",
        "database table is locked",
        "attempt to write a readonly database",
        "database or disk is full",
        "unable to open database file",
        "disk I/O error",
    ];
    let postgres = match code {
        Some(code) if code.len() == 5 => {
            code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
                || (code == "55000" && message.contains("not currently accepting connections"))
        }
        _ => false,
    };
    postgres || SQLITE.iter().any(|m| message.contains(m))
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// One stored version of one role's metadata.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub role: String,
    pub version: u64,
    pub sha256: String,
    /// Exact bytes; cheap to clone (shared with the read cache and the
    /// response body).
    pub bytes: bytes::Bytes,
    /// `signed.expires` as Unix seconds (NULL for rows stored before the
    /// column existed; see [`expires_of`]).
    pub expires_at: Option<i64>,
}

impl StoredFile {
    /// As the publish cores take current files: (role, version, exact bytes).
    pub fn as_row(&self) -> (&str, u64, &[u8]) {
        (&self.role, self.version, &self.bytes)
    }

    /// When this version expires: the stored column, else parsed from the bytes.
    pub fn expires(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self.expires_at {
            Some(secs) => chrono::DateTime::from_timestamp(secs, 0),
            None => expires_of(&self.bytes),
        }
    }
}

/// A current file as [`RepoTx::current_files_known`] reads it: without
/// its bytes when the caller said it holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentFile {
    pub role: String,
    pub version: u64,
    pub sha256: String,
    pub bytes: Option<bytes::Bytes>,
}

impl From<StoredFile> for CurrentFile {
    fn from(file: StoredFile) -> CurrentFile {
        CurrentFile {
            role: file.role,
            version: file.version,
            sha256: file.sha256,
            bytes: Some(file.bytes),
        }
    }
}

/// The current version of one role of one repository and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryRow {
    pub gun: String,
    pub role: String,
    pub version: u64,
    /// Unix seconds; `None` for a row stored before `expires_at` existed
    /// whose bytes do not parse either (never for server-written rows).
    pub expires_at: Option<i64>,
    /// The repository is a transparent mirror (never re-signed here).
    pub mirrored: bool,
}

/// An imported Notary repository awaiting its timestamp key rotation
/// ([`Storage::awaiting_rotation`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AwaitingRotation {
    pub gun: String,
    pub timestamp_version: Option<u64>,
    /// Unix seconds.
    pub timestamp_expires_at: Option<i64>,
}

/// Which expiries make a repository a re-sign candidate (Unix seconds):
/// a timestamp expiring before `timestamp_before` (inside its margin or
/// past its cadence) or after `timestamp_after` (signed with a longer
/// lifetime than configured now), a snapshot before `snapshot_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResignDue {
    pub timestamp_before: i64,
    pub timestamp_after: i64,
    pub snapshot_before: i64,
    /// Server-held bins expiring before this are due too.
    pub bins_before: i64,
}

/// One kind of role's expiries ([`Storage::expiry_summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirySummary {
    /// `root`, `targets`, `snapshot`, `timestamp` or `delegated`.
    pub kind: String,
    pub total: u64,
    /// Already expired.
    pub expired: u64,
    /// The soonest expiry (Unix seconds).
    pub soonest: Option<i64>,
    /// How many expire before each of the bounds asked for.
    pub before: Vec<u64>,
}

/// `signed.expires` of any TUF metadata file, without parsing the rest.
pub fn expires_of(bytes: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    #[derive(serde::Deserialize)]
    struct Head {
        signed: Signed,
    }
    #[derive(serde::Deserialize)]
    struct Signed {
        #[serde(with = "tagtrust_shared::metadata::expiry")]
        expires: chrono::DateTime<chrono::Utc>,
    }
    serde_json::from_slice::<Head>(bytes)
        .ok()
        .map(|h| h.signed.expires)
}

/// A metadata file this server signed, to store
/// ([`RepoTx::insert_signed`]): its exact bytes with the sha256 and
/// `signed.expires` it was signed with, so storing it neither hashes nor
/// parses it again.
#[derive(Debug, Clone)]
pub(crate) struct SignedFile {
    pub(crate) role: String,
    pub(crate) version: u64,
    pub(crate) bytes: Vec<u8>,
    pub(crate) sha256: String,
    pub(crate) expires: chrono::DateTime<chrono::Utc>,
}

/// One server-held key (public part plus the sealed seed).
#[derive(Debug, Clone)]
pub struct OnlineKeyRow {
    pub key_id: String,
    pub public_key: PublicKey,
    pub sealed_seed: Vec<u8>,
}

/// An API token as stored (the secret itself is never stored).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Storage {
    pool: AnyPool,
    backend: Backend,
    /// Current files served from memory (see `cache.rs`).
    cache: Arc<ReadCache>,
    /// Versioned and checksummed files served from memory (`file_cache.rs`).
    files: Arc<FileCache>,
    /// For the PostgreSQL change listener; may hold a password, never shown.
    url: Arc<String>,
    /// [`Settings::fault_changefeed_commit_delay_ms`].
    commit_delay_ms: u64,
    /// Woken by every SQLite write transaction's commit: the WAL has
    /// frames to checkpoint ([`Storage::checkpoint_in_background`]).
    wal_written: Arc<tokio::sync::Notify>,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A stored BIGINT version as TUF's u64.
fn version_from_db(version: i64) -> Result<u64> {
    u64::try_from(version).map_err(|_| StorageError::Corrupt(format!("negative version {version}")))
}

fn file_from_row(row: &AnyRow) -> Result<StoredFile> {
    Ok(StoredFile {
        role: row.try_get("role")?,
        version: version_from_db(row.try_get("version")?)?,
        sha256: row.try_get("sha256")?,
        bytes: row.try_get::<Vec<u8>, _>("bytes")?.into(),
        expires_at: row.try_get("expires_at")?,
    })
}

/// A row's `role` and `version`.
fn role_version(row: &AnyRow) -> Result<(String, u64)> {
    Ok((
        row.try_get("role")?,
        version_from_db(row.try_get("version")?)?,
    ))
}

fn key_from_row(row: &AnyRow) -> Result<OnlineKeyRow> {
    let public: String = row.try_get("public_key")?;
    Ok(OnlineKeyRow {
        key_id: row.try_get("key_id")?,
        public_key: serde_json::from_str(&public)
            .map_err(|e| StorageError::Corrupt(format!("stored public key: {e}")))?,
        sealed_seed: row.try_get("encrypted_seed")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRow> {
    let scopes: String = row.try_get("scopes")?;
    Ok(TokenRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: scopes.lines().map(str::to_string).collect(),
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn change_from_row(row: &AnyRow) -> Result<ChangeRecord> {
    let category: String = row.try_get("category")?;
    Ok(ChangeRecord {
        id: row.try_get("id")?,
        gun: row.try_get("gun")?,
        version: version_from_db(row.try_get("version")?)?,
        sha256: row.try_get("sha256")?,
        category: ChangeCategory::parse(&category)
            .ok_or_else(|| StorageError::Corrupt(format!("changefeed category {category:?}")))?,
        created_at: row.try_get("created_at")?,
    })
}

/// A token-scope glob (`*` = any run of characters) as the backend's
/// pattern: SQLite's case-sensitive GLOB (its LIKE ignores ASCII case) or
/// PostgreSQL's LIKE, with every other pattern character escaped.
fn sql_pattern(backend: Backend, glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match (backend, c) {
            (_, '*') => out.push(if backend == Backend::Sqlite { '*' } else { '%' }),
            (Backend::Sqlite, '?' | '[') => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            (Backend::Postgres, '%' | '_' | '\\') => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Versions are u64 in TUF but BIGINT in the database.
pub fn version_to_db(version: u64) -> Result<i64> {
    i64::try_from(version)
        .map_err(|_| StorageError::Corrupt(format!("version {version} too large")))
}

const SELECT_FILE: &str = "SELECT role, version, sha256, bytes, expires_at FROM metadata";
const SELECT_KEY: &str = "SELECT role, key_id, public_key, encrypted_seed FROM online_keys";

impl Storage {
    /// Connect (creating the SQLite file and data directory if needed) and
    /// run the migrations.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Storage> {
        sqlx::any::install_default_drivers();
        let url = match &settings.database_url {
            Some(url) => url.clone(),
            None => {
                std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                    format!("creating data directory {}", settings.data_dir.display())
                })?;
                let dir = settings.data_dir.canonicalize().with_context(|| {
                    format!("resolving data directory {}", settings.data_dir.display())
                })?;
                format!("sqlite://{}?mode=rwc", dir.join(SQLITE_FILE).display())
            }
        };
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!("unsupported database URL scheme (use postgres:// or sqlite://)");
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            // No ping before every query (sqlx's default): on PostgreSQL it
            // was a protocol round trip per read. A connection that broke
            // fails its query, which is answered 503 and closed.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never wait for the writer. The busy
                        // timeout makes concurrent writers queue instead of
                        // failing with "database is locked".
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 30000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        // Checkpoints run in the background
                        // (`checkpoint_in_background`): SQLite's own, at
                        // 1,000 pages, ran inside whichever COMMIT crossed
                        // it (~20 ms, one publish in twenty). This one
                        // stays as a bound on the WAL if that task falls
                        // behind.
                        sqlx::query("PRAGMA wal_autocheckpoint = 16384")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            // The URL may carry a password: do not echo it.
            .context("connecting to the database")?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator
            .run(&pool)
            .await
            .context("running database migrations")?;
        Ok(Storage {
            pool,
            backend,
            cache: Arc::new(ReadCache::new(
                Duration::from_millis(settings.read_cache_ms),
                settings.read_cache_bytes,
            )),
            files: Arc::new(FileCache::new(settings.file_cache_bytes)),
            url: Arc::new(url),
            commit_delay_ms: settings.fault_changefeed_commit_delay_ms,
            wal_written: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Is the database answering?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The one file (or none) `query` selects ([`SELECT_FILE`] with its
    /// conditions bound).
    async fn one_file<'q>(
        &self,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<Option<StoredFile>> {
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// The newest version of `role`, from the read cache when it has it.
    pub(crate) async fn current(&self, gun: &str, role: &str) -> Result<Option<StoredFile>> {
        if let Some(cached) = self.cache.get(gun, role) {
            return Ok(cached);
        }
        let epoch = self.cache.epoch();
        let sql =
            format!("{SELECT_FILE} WHERE gun = $1 AND role = $2 ORDER BY version DESC LIMIT 1");
        let file = self
            .one_file(sqlx::query(&sql).bind(gun).bind(role))
            .await?;
        self.cache.put(gun, role, file.clone(), epoch);
        Ok(file)
    }

    /// Drop what the read cache holds of `gun`, so the next read asks the
    /// database (after a re-sign attempt that found another process had
    /// already signed).
    pub(crate) fn forget_cached(&self, gun: &str) {
        self.cache.invalidate(gun);
    }

    /// On PostgreSQL, follow other processes' commits (`NOTIFY` from
    /// [`RepoTx::commit`]) and invalidate the caches as they come: a
    /// repository's current files on any change, the immutable files on a
    /// deletion. When the listening connection fails, both caches are
    /// dropped (changes may have been missed) and it reconnects; current
    /// files never outlive the read cache's time to live either way.
    pub fn listen_for_changes(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let (url, cache, files) = (self.url.clone(), self.cache.clone(), self.files.clone());
        let forget_all = move || {
            cache.clear();
            files.clear();
        };
        let (cache, files) = (self.cache.clone(), self.files.clone());
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener
                            .listen_all([CHANGES_CHANNEL, DELETIONS_CHANNEL])
                            .await
                        {
                            tracing::warn!(error = %e, "listening for changes");
                        } else {
                            forget_all();
                            loop {
                                match listener.try_recv().await {
                                    Ok(Some(note)) => {
                                        cache.invalidate(note.payload());
                                        if note.channel() == DELETIONS_CHANNEL {
                                            files.clear();
                                        }
                                    }
                                    // Reconnected: what happened meanwhile is unknown.
                                    Ok(None) => forget_all(),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "change listener failed");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "change listener cannot connect"),
                }
                forget_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// SQLite only: copy the WAL's committed frames into the database file
    /// in the background, at most once per [`CHECKPOINT_EVERY`] while
    /// transactions commit and never when idle. A passive checkpoint waits
    /// for no reader or writer, so no request waits for it, and COMMIT is
    /// left with appending its frames and one fsync (see `connect`'s
    /// `wal_autocheckpoint`).
    pub fn checkpoint_in_background(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let (pool, written) = (self.pool.clone(), self.wal_written.clone());
        tokio::spawn(async move {
            loop {
                written.notified().await;
                // Gather the commits of the next moment into one checkpoint.
                tokio::time::sleep(CHECKPOINT_EVERY).await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    // The next commit tries again; the WAL stays bounded
                    // by `wal_autocheckpoint` meanwhile.
                    tracing::warn!(error = %e, "checkpointing the SQLite WAL");
                }
            }
        });
    }

    /// The expiry of the current version of `role`, without reading its
    /// bytes (the timestamp read path checks the snapshot's this way):
    /// `None` without a current version, `Some(None)` when its expiry
    /// cannot be read. Rows stored before `expires_at` existed are read
    /// whole.
    pub async fn current_expiry(
        &self,
        gun: &str,
        role: &str,
    ) -> Result<Option<Option<chrono::DateTime<chrono::Utc>>>> {
        if self.cache.enabled() {
            if let Some(cached) = self
                .cache
                .get_with(gun, role, |f| f.map(StoredFile::expires))
            {
                return Ok(cached);
            }
            return Ok(self.current(gun, role).await?.map(|file| file.expires()));
        }
        let row = sqlx::query(
            "SELECT expires_at FROM metadata WHERE gun = $1 AND role = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(gun)
        .bind(role)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: Option<i64> = row.try_get("expires_at")?;
        match expires_at {
            Some(secs) => Ok(Some(chrono::DateTime::from_timestamp(secs, 0))),
            None => Ok(self.current(gun, role).await?.map(|file| file.expires())),
        }
    }

    pub async fn by_version(
        &self,
        gun: &str,
        role: &str,
        version: u64,
    ) -> Result<Option<StoredFile>> {
        let key = FileKey::Version(version);
        if let Some(file) = self.files.get(gun, role, key) {
            return Ok(Some(file));
        }
        let Ok(db_version) = i64::try_from(version) else {
            return Ok(None);
        };
        let sql = format!("{SELECT_FILE} WHERE gun = $1 AND role = $2 AND version = $3");
        let query = sqlx::query(&sql).bind(gun).bind(role).bind(db_version);
        self.load_immutable(gun, role, key, query).await
    }

    pub async fn by_sha256(
        &self,
        gun: &str,
        role: &str,
        sha256: &str,
    ) -> Result<Option<StoredFile>> {
        let key = FileKey::Sha256(sha256);
        if let Some(file) = self.files.get(gun, role, key) {
            return Ok(Some(file));
        }
        let sql = format!(
            "{SELECT_FILE} WHERE gun = $1 AND role = $2 AND sha256 = $3 ORDER BY version DESC LIMIT 1"
        );
        let query = sqlx::query(&sql).bind(gun).bind(role).bind(sha256);
        self.load_immutable(gun, role, key, query).await
    }

    /// A versioned or checksummed file the file cache does not hold: what
    /// `query` selects, then kept in the cache. (Callers look in the cache
    /// first, before they build the query: most reads end there.)
    async fn load_immutable<'q>(
        &self,
        gun: &str,
        role: &str,
        key: FileKey<'_>,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<Option<StoredFile>> {
        let epoch = self.files.epoch();
        let file = self.one_file(query).await?;
        if let Some(file) = &file {
            self.files.put(gun, role, key, file.clone(), epoch);
        }
        Ok(file)
    }

    /// The most recently created server key for `role`, if any.
    pub(crate) async fn latest_key(
        &self,
        gun: &str,
        role: KeyRole,
    ) -> Result<Option<OnlineKeyRow>> {
        let row = sqlx::query(&format!(
            "{SELECT_KEY} WHERE gun = $1 AND role = $2 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(gun)
        .bind(role.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// A repository's metadata dialect, read without its lock (`None`: no
    /// such repository, or never published).
    pub(crate) async fn dialect(&self, gun: &str) -> Result<Option<crate::dialect::Dialect>> {
        let row = sqlx::query("SELECT dialect FROM repositories WHERE gun = $1")
            .bind(gun)
            .fetch_optional(&self.pool)
            .await?;
        let dialect: Option<String> = match row {
            Some(row) => row.try_get("dialect")?,
            None => None,
        };
        Ok(dialect.as_deref().and_then(crate::dialect::Dialect::parse))
    }

    /// Start a write transaction holding `gun`'s lock until commit or drop
    /// (drop rolls back).
    ///
    /// One statement takes the lock and reads the flags every write checks
    /// ([`RepoFlags`]): it creates the row if missing, else bumps
    /// `lock_seq` — a write either way, so SQLite takes its write lock at
    /// once and PostgreSQL row-locks until commit.
    pub async fn lock(&self, gun: &str) -> Result<RepoTx> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO repositories (gun, lock_seq, created_at) VALUES ($1, 1, $2) \
             ON CONFLICT (gun) DO UPDATE SET lock_seq = repositories.lock_seq + 1 \
             RETURNING mirrored, dialect, awaiting_rotation",
        )
        .bind(gun)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await?;
        let flags = RepoFlags::from_row(&row)?;
        Ok(RepoTx {
            tx,
            gun: gun.to_string(),
            cache: self.cache.clone(),
            files: self.files.clone(),
            dirty: false,
            backend: self.backend,
            commit_delay_ms: self.commit_delay_ms,
            change: None,
            flags,
            keys: None,
            wal_written: self.wal_written.clone(),
        })
    }

    /// The repositories whose timestamp or snapshot may be due for a
    /// re-sign (the scheduler's candidates; [`ResignDue`] says which
    /// expiries qualify), transparent mirrors and imported Notary
    /// repositories awaiting their timestamp key rotation left out. An index range scan
    /// per condition: the work grows with what is due, not with the number
    /// of repositories.
    pub async fn resign_candidates(&self, due: &ResignDue) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT gun FROM (\
               SELECT c.gun AS gun FROM current_metadata c \
               WHERE ((c.role = 'timestamp' AND (c.expires_at < $1 OR c.expires_at > $2)) \
                   OR (c.role = 'snapshot' AND c.expires_at < $3) \
                   OR (c.role IN ('timestamp', 'snapshot') AND c.expires_at IS NULL)) \
                 AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.gun = c.gun \
                                 AND (r.mirrored <> 0 OR r.awaiting_rotation <> 0)) \
               UNION \
               SELECT b.gun AS gun FROM repositories b \
               WHERE b.bins_expire_at IS NOT NULL AND b.bins_expire_at < $4 AND b.mirrored = 0\
             ) AS due ORDER BY gun",
        )
        .bind(due.timestamp_before)
        .bind(due.timestamp_after)
        .bind(due.snapshot_before)
        .bind(due.bins_before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(row.try_get("gun")?)).collect()
    }

    /// Fill in `expires_at` for rows stored before it existed (once, when
    /// the scheduler starts). Returns how many rows were looked at.
    pub async fn backfill_missing_expiries(&self) -> Result<usize> {
        let rows =
            sqlx::query("SELECT gun, role, version FROM current_metadata WHERE expires_at IS NULL")
                .fetch_all(&self.pool)
                .await?;
        for row in &rows {
            let (gun, role): (String, String) = (row.try_get("gun")?, row.try_get("role")?);
            self.backfill_expires_at(&gun, &role, row.try_get("version")?)
                .await?;
        }
        Ok(rows.len())
    }

    /// How the current roles' expiries are spread, by kind of role (the
    /// four top-level roles and `delegated`; never a row per repository):
    /// the expiry metrics. `bounds` are Unix seconds, ascending; each
    /// summary counts the roles expiring before each bound.
    pub async fn expiry_summary(&self, now: i64, bounds: &[i64]) -> Result<Vec<ExpirySummary>> {
        let mut sql = String::from(
            "SELECT CASE WHEN role IN ('root', 'targets', 'snapshot', 'timestamp') \
                     THEN role ELSE 'delegated' END AS kind, \
                    COUNT(*) AS total, MIN(expires_at) AS soonest, \
                    SUM(CASE WHEN expires_at < $1 THEN 1 ELSE 0 END) AS expired",
        );
        for i in 0..bounds.len() {
            sql.push_str(&format!(
                ", SUM(CASE WHEN expires_at < ${} THEN 1 ELSE 0 END) AS before_{i}",
                i + 2
            ));
        }
        sql.push_str(" FROM current_metadata GROUP BY kind ORDER BY kind");
        let mut query = sqlx::query(&sql).bind(now);
        for bound in bounds {
            query = query.bind(*bound);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let count = |column: &str| -> Result<u64> {
                    let n: Option<i64> = row.try_get(column)?;
                    Ok(n.unwrap_or(0).max(0) as u64)
                };
                Ok(ExpirySummary {
                    kind: row.try_get("kind")?,
                    total: count("total")?,
                    expired: count("expired")?,
                    soonest: row.try_get("soonest")?,
                    before: (0..bounds.len())
                        .map(|i| count(&format!("before_{i}")))
                        .collect::<Result<_>>()?,
                })
            })
            .collect()
    }

    /// The current roles expiring before `before` (Unix seconds), soonest
    /// first, at most `limit`: the per-repository detail behind the
    /// aggregate metrics. Walks the expiry index, so it costs what it
    /// returns.
    pub async fn expiring(&self, before: i64, limit: u32) -> Result<Vec<ExpiryRow>> {
        let rows = sqlx::query(
            "SELECT c.gun, c.role, c.version, c.expires_at, COALESCE(r.mirrored, 0) AS mirrored \
             FROM current_metadata c LEFT JOIN repositories r ON r.gun = c.gun \
             WHERE c.expires_at < $1 ORDER BY c.expires_at, c.gun, c.role LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ExpiryRow {
                    gun: row.try_get("gun")?,
                    role: row.try_get("role")?,
                    version: version_from_db(row.try_get("version")?)?,
                    expires_at: row.try_get("expires_at")?,
                    mirrored: row.try_get::<i64, _>("mirrored")? != 0,
                })
            })
            .collect()
    }

    /// Parse one old row's expiry and store it (the bytes never change, so
    /// this needs no lock; the version condition leaves a newer current
    /// row alone).
    async fn backfill_expires_at(
        &self,
        gun: &str,
        role: &str,
        version: i64,
    ) -> Result<Option<i64>> {
        let row =
            sqlx::query("SELECT bytes FROM metadata WHERE gun = $1 AND role = $2 AND version = $3")
                .bind(gun)
                .bind(role)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Vec<u8> = row.try_get("bytes")?;
        let Some(expires) = expires_of(&bytes) else {
            return Ok(None);
        };
        for table in ["metadata", "current_metadata"] {
            sqlx::query(&format!(
                "UPDATE {table} SET expires_at = $1 WHERE gun = $2 AND role = $3 AND version = $4"
            ))
            .bind(expires.timestamp())
            .bind(gun)
            .bind(role)
            .bind(version)
            .execute(&self.pool)
            .await?;
        }
        Ok(Some(expires.timestamp()))
    }

    /// The Notary repositories imported from a notary-server that still
    /// await `notary key rotate GUN timestamp -r` here, by name, each with
    /// its current timestamp's version and expiry (the deadline: this
    /// server cannot re-sign it). Walks the partial index of them.
    pub async fn awaiting_rotation(&self) -> Result<Vec<AwaitingRotation>> {
        let rows = sqlx::query(
            "SELECT r.gun, c.version, c.expires_at FROM repositories r \
             LEFT JOIN current_metadata c ON c.gun = r.gun AND c.role = 'timestamp' \
             WHERE r.awaiting_rotation <> 0 ORDER BY r.gun",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AwaitingRotation {
                    gun: row.try_get("gun")?,
                    timestamp_version: row
                        .try_get::<Option<i64>, _>("version")?
                        .map(version_from_db)
                        .transpose()?,
                    timestamp_expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// How many repositories [`Storage::awaiting_rotation`] lists (the metric).
    pub async fn count_awaiting_rotation(&self) -> Result<u64> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM repositories WHERE awaiting_rotation <> 0")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        Ok(n.max(0) as u64)
    }

    /// Delete all metadata and keys of `gun`. Returns whether anything existed.
    pub async fn delete_repository(&self, gun: &str) -> Result<bool> {
        let mut repo = self.lock(gun).await?;
        let mut deleted = 0;
        for table in ["metadata", "current_metadata", "online_keys"] {
            deleted += sqlx::query(&format!("DELETE FROM {table} WHERE gun = $1"))
                .bind(gun)
                .execute(&mut *repo.tx)
                .await?
                .rows_affected();
        }
        sqlx::query("DELETE FROM repositories WHERE gun = $1")
            .bind(gun)
            .execute(&mut *repo.tx)
            .await?;
        if deleted > 0 {
            repo.change = Some(Change::Deletion);
            repo.dirty = true;
        }
        repo.commit().await?;
        Ok(deleted > 0)
    }

    /// One page of the changefeed for `scope`, oldest first.
    pub async fn changes(&self, scope: &FeedScope, query: FeedQuery) -> Result<Vec<ChangeRecord>> {
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let mut cursor_bind = None;
        let order = match query.cursor {
            Cursor::After(id) => {
                cursor_bind = Some(id);
                conditions.push("id > $1".to_string());
                "ASC"
            }
            Cursor::Before(id) => {
                cursor_bind = Some(id);
                conditions.push("id < $1".to_string());
                "DESC"
            }
            Cursor::Latest => "DESC",
        };
        let first = 1 + usize::from(cursor_bind.is_some());
        match scope {
            FeedScope::All => {}
            FeedScope::Gun(gun) => {
                conditions.push(format!("gun = ${first}"));
                binds.push(gun.clone());
            }
            FeedScope::Matching(globs) => {
                let operator = match self.backend {
                    Backend::Sqlite => "GLOB",
                    Backend::Postgres => "LIKE",
                };
                let alternatives: Vec<String> = (0..globs.len())
                    .map(|i| format!("gun {operator} ${}", first + i))
                    .collect();
                conditions.push(format!("({})", alternatives.join(" OR ")));
                binds.extend(globs.iter().map(|g| sql_pattern(self.backend, g)));
            }
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {} ", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT id, gun, version, sha256, category, created_at FROM changefeed \
             {filter}ORDER BY id {order} LIMIT {}",
            query.limit
        );
        let mut statement = sqlx::query(&sql);
        if let Some(id) = cursor_bind {
            statement = statement.bind(id);
        }
        for value in binds {
            statement = statement.bind(value);
        }
        let rows = statement.fetch_all(&self.pool).await?;
        let mut records = rows
            .iter()
            .map(change_from_row)
            .collect::<Result<Vec<_>>>()?;
        if order == "DESC" {
            records.reverse();
        }
        Ok(records)
    }

    pub async fn insert_token(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        scopes: &[String],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(token_hash)
        .bind(scopes.join("\n"))
        .bind(now_secs())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live (not revoked) token with this secret hash.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>> {
        let row = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked_at FROM tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked_at FROM tokens ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revoke a token; false if there is no live token with that ID.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_secs())
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// A write transaction on one repository, holding its lock.
pub struct RepoTx {
    tx: Transaction<'static, Any>,
    gun: String,
    cache: Arc<ReadCache>,
    files: Arc<FileCache>,
    /// Something was written: readers must see it once committed.
    dirty: bool,
    backend: Backend,
    commit_delay_ms: u64,
    /// The changefeed record this transaction adds when it commits.
    change: Option<Change>,
    /// The repository row's flags, read as the lock was taken and kept up
    /// to date by this transaction's setters (no one else can change them
    /// while it holds the lock).
    flags: RepoFlags,
    /// Every server key of the repository by role, oldest first, once read
    /// ([`RepoTx::keys`]: a publish asks for the bin, snapshot and
    /// timestamp keys; one query answers all three).
    keys: Option<BTreeMap<String, Vec<OnlineKeyRow>>>,
    /// [`Storage::checkpoint_in_background`]'s wake-up.
    wal_written: Arc<tokio::sync::Notify>,
}

/// The flags of a repository's `repositories` row that its writes check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RepoFlags {
    /// A transparent mirror here (see the migration).
    pub(crate) mirrored: bool,
    /// Its metadata dialect (`None`: never published).
    pub(crate) dialect: Option<crate::dialect::Dialect>,
    /// An imported Notary repository awaiting its timestamp key rotation.
    pub(crate) awaiting_rotation: bool,
}

impl RepoFlags {
    fn from_row(row: &AnyRow) -> Result<RepoFlags> {
        let dialect: Option<String> = row.try_get("dialect")?;
        Ok(RepoFlags {
            mirrored: row.try_get::<i64, _>("mirrored")? != 0,
            dialect: dialect.as_deref().and_then(crate::dialect::Dialect::parse),
            awaiting_rotation: row.try_get::<i64, _>("awaiting_rotation")? != 0,
        })
    }
}

/// What a committed write did to a repository, as the changefeed tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// A new timestamp: its version and the SHA-256 of its bytes.
    Update {
        version: i64,
        sha256: String,
    },
    Deletion,
}

/// Most roles [`RepoTx::current_files_of`] binds as parameters of one
/// statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_ROLES_BOUND: usize = 512;

/// Most rows [`RepoTx::insert_files`] writes with one statement (7
/// parameters each, well within both engines' limits).
const MAX_ROWS_PER_INSERT: usize = 256;

/// `head` followed by `rows` placeholder tuples of `columns` each
/// (`($1, $2), ($3, $4)`), then `tail`.
fn values_statement(head: &str, rows: usize, columns: usize, tail: &str) -> String {
    values_statement_after(0, head, rows, columns, tail)
}

/// [`values_statement`] whose parameters start after the first `before`
/// (a statement following another in one SQLite execute: parameters are
/// numbered across the whole text).
fn values_statement_after(
    before: usize,
    head: &str,
    rows: usize,
    columns: usize,
    tail: &str,
) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|column| format!("${}", before + row * columns + column))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!("{head} {}{tail}", tuples.join(", "))
}

/// The PostgreSQL notification channel commits announce their GUN on.
const CHANGES_CHANNEL: &str = "tagtrust_changes";
/// The PostgreSQL channel on which a commit that deleted a repository says
/// so (its name as the payload): versioned files are immutable until then.
const DELETIONS_CHANNEL: &str = "tagtrust_deletions";

/// The key of the PostgreSQL advisory lock that orders changefeed records
/// ("tagtrust" in ASCII).
const CHANGEFEED_LOCK: i64 = 0x7461_6774_7275_7374;

impl RepoTx {
    /// The repository this transaction holds the lock of.
    pub(crate) fn gun(&self) -> &str {
        &self.gun
    }

    /// The newest stored version of every role of the repository.
    pub async fn current_files(&mut self) -> Result<Vec<StoredFile>> {
        let rows = sqlx::query(&format!(
            "{SELECT_FILE} m WHERE m.gun = $1 AND m.version = \
             (SELECT MAX(m2.version) FROM metadata m2 WHERE m2.gun = m.gun AND m2.role = m.role)"
        ))
        .bind(&self.gun)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// The newest stored version of each of `roles` that is stored: what
    /// [`RepoTx::current_files`] answers, for the roles a change needs
    /// (a publish into 1,024 hashed bins reads one of them, not 11 MB).
    pub(crate) async fn current_files_of(&mut self, roles: &[&str]) -> Result<Vec<StoredFile>> {
        if roles.is_empty() {
            return Ok(Vec::new());
        }
        if roles.len() > MAX_ROLES_BOUND {
            // Most of the repository: one scan, not a statement this long.
            let wanted: BTreeSet<&str> = roles.iter().copied().collect();
            let mut files = self.current_files().await?;
            files.retain(|f| wanted.contains(f.role.as_str()));
            return Ok(files);
        }
        let placeholders: Vec<String> = (2..roles.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT m.role, m.version, m.sha256, m.bytes, m.expires_at FROM metadata m \
             JOIN current_metadata c ON c.gun = m.gun AND c.role = m.role AND c.version = m.version \
             WHERE m.gun = $1 AND m.role IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(&self.gun);
        for role in roles {
            query = query.bind(*role);
        }
        let rows = query.fetch_all(&mut *self.tx).await?;
        rows.iter().map(file_from_row).collect()
    }

    /// [`RepoTx::current_files_of`], but without the bytes of a file whose
    /// `role:sha256` is in `known` (the caller holds it parsed already,
    /// `kept_current.rs`): `bytes` is `None` for those. The sha256 decides,
    /// so a file another process stored in between is read as usual.
    pub(crate) async fn current_files_known(
        &mut self,
        roles: &[&str],
        known: &[String],
    ) -> Result<Vec<CurrentFile>> {
        if known.is_empty() || roles.len() + known.len() > MAX_ROLES_BOUND {
            let files = self.current_files_of(roles).await?;
            return Ok(files.into_iter().map(CurrentFile::from).collect());
        }
        let placeholders = |from: usize, n: usize| -> String {
            (from..from + n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "SELECT m.role, m.version, m.sha256, \
             CASE WHEN m.role || ':' || m.sha256 IN ({}) THEN NULL ELSE m.bytes END AS bytes \
             FROM metadata m \
             JOIN current_metadata c ON c.gun = m.gun AND c.role = m.role AND c.version = m.version \
             WHERE m.gun = $1 AND m.role IN ({})",
            placeholders(2, known.len()),
            placeholders(2 + known.len(), roles.len()),
        );
        let mut query = sqlx::query(&sql).bind(&self.gun);
        for key in known {
            query = query.bind(key.as_str());
        }
        for role in roles {
            query = query.bind(*role);
        }
        let rows = query.fetch_all(&mut *self.tx).await?;
        rows.iter()
            .map(|row| {
                Ok(CurrentFile {
                    role: row.try_get("role")?,
                    version: version_from_db(row.try_get("version")?)?,
                    sha256: row.try_get("sha256")?,
                    bytes: row.try_get::<Option<Vec<u8>>, _>("bytes")?.map(Into::into),
                })
            })
            .collect()
    }

    /// Is the repository a transparent mirror here?
    pub(crate) fn is_mirrored(&self) -> bool {
        self.flags.mirrored
    }

    /// The repository's metadata dialect (`None`: never published).
    pub(crate) fn dialect(&self) -> Option<crate::dialect::Dialect> {
        self.flags.dialect
    }

    /// Fix the repository's dialect (its first publish does).
    pub(crate) async fn set_dialect(&mut self, dialect: crate::dialect::Dialect) -> Result<()> {
        self.dirty = true;
        sqlx::query("UPDATE repositories SET dialect = $1 WHERE gun = $2")
            .bind(dialect.as_str())
            .bind(&self.gun)
            .execute(&mut *self.tx)
            .await?;
        self.flags.dialect = Some(dialect);
        Ok(())
    }

    /// Does the repository await its timestamp key rotation (an imported
    /// Notary repository; see the migration)?
    pub(crate) fn is_awaiting_rotation(&self) -> bool {
        self.flags.awaiting_rotation
    }

    /// Mark the repository as awaiting (or no longer awaiting) its
    /// timestamp key rotation.
    pub(crate) async fn set_awaiting_rotation(&mut self, awaiting: bool) -> Result<()> {
        self.dirty = true;
        sqlx::query("UPDATE repositories SET awaiting_rotation = $1 WHERE gun = $2")
            .bind(i64::from(awaiting))
            .bind(&self.gun)
            .execute(&mut *self.tx)
            .await?;
        self.flags.awaiting_rotation = awaiting;
        Ok(())
    }

    /// Make the repository a transparent mirror (see the migration).
    pub(crate) async fn mark_mirrored(&mut self) -> Result<()> {
        self.dirty = true;
        sqlx::query("UPDATE repositories SET mirrored = 1 WHERE gun = $1")
            .bind(&self.gun)
            .execute(&mut *self.tx)
            .await?;
        self.flags.mirrored = true;
        Ok(())
    }

    /// Does the server hold any key for the repository?
    pub(crate) async fn has_keys(&mut self) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS found FROM online_keys WHERE gun = $1 LIMIT 1")
            .bind(&self.gun)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.is_some())
    }

    /// Every stored version of every role: `(role, version, sha256)`,
    /// without the bytes.
    pub(crate) async fn stored_versions(&mut self) -> Result<Vec<(String, u64, String)>> {
        let rows = sqlx::query("SELECT role, version, sha256 FROM metadata WHERE gun = $1")
            .bind(&self.gun)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| {
                let (role, version) = role_version(row)?;
                Ok((role, version, row.try_get("sha256")?))
            })
            .collect()
    }

    /// Every stored version of `role`, oldest first.
    pub(crate) async fn all_versions(&mut self, role: &str) -> Result<Vec<StoredFile>> {
        let rows = sqlx::query(&format!(
            "{SELECT_FILE} WHERE gun = $1 AND role = $2 ORDER BY version"
        ))
        .bind(&self.gun)
        .bind(role)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// Every server key of `role`, oldest first. The repository's keys of
    /// every role are read with the first call and kept for the
    /// transaction ([`RepoTx::insert_key`] forgets them).
    pub(crate) async fn keys(&mut self, role: KeyRole) -> Result<Vec<OnlineKeyRow>> {
        let keys = match &mut self.keys {
            Some(keys) => keys,
            None => {
                let rows = sqlx::query(&format!("{SELECT_KEY} WHERE gun = $1 ORDER BY role, seq"))
                    .bind(&self.gun)
                    .fetch_all(&mut *self.tx)
                    .await?;
                let mut by_role: BTreeMap<String, Vec<OnlineKeyRow>> = BTreeMap::new();
                for row in &rows {
                    by_role
                        .entry(row.try_get("role")?)
                        .or_default()
                        .push(key_from_row(row)?);
                }
                self.keys.insert(by_role)
            }
        };
        Ok(keys.get(role.as_str()).cloned().unwrap_or_default())
    }

    /// The public halves of [`RepoTx::keys`].
    pub(crate) async fn public_keys(&mut self, role: KeyRole) -> Result<Vec<PublicKey>> {
        Ok(self
            .keys(role)
            .await?
            .into_iter()
            .map(|k| k.public_key)
            .collect())
    }

    /// Store a new server key for `role`; it becomes the latest.
    pub(crate) async fn insert_key(
        &mut self,
        role: KeyRole,
        public_key: &PublicKey,
        sealed_seed: &[u8],
    ) -> Result<()> {
        self.dirty = true;
        let role = role.as_str();
        let seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM online_keys WHERE gun = $1 AND role = $2",
        )
        .bind(&self.gun)
        .bind(role)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("next")?;
        let public = serde_json::to_string(public_key)
            .map_err(|e| StorageError::Corrupt(format!("public key: {e}")))?;
        sqlx::query(
            "INSERT INTO online_keys (gun, role, seq, key_id, public_key, encrypted_seed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.gun)
        .bind(role)
        .bind(seq)
        .bind(public_key.key_id())
        .bind(public)
        .bind(sealed_seed.to_vec())
        .bind(now_secs())
        .execute(&mut *self.tx)
        .await?;
        self.keys = None;
        Ok(())
    }

    /// Store one new metadata version (exact bytes) and make it current.
    pub async fn insert_metadata(&mut self, role: &str, version: u64, bytes: &[u8]) -> Result<()> {
        self.insert_files(&[(role, version, bytes)]).await
    }

    /// Store new metadata versions as (role, version, exact bytes) and make
    /// each role's newest of them current: one `INSERT` into each table for
    /// up to [`MAX_ROWS_PER_INSERT`] files, not two statements per file (a
    /// publish stores an uploaded bin, snapshot and timestamp together); on
    /// SQLite, both in one execute when the files fit in one `INSERT`.
    pub async fn insert_files<R: AsRef<str>, B: AsRef<[u8]>>(
        &mut self,
        files: &[(R, u64, B)],
    ) -> Result<()> {
        self.insert(files, &[]).await
    }

    /// [`RepoTx::insert_files`] of files this server signed, whose sha256
    /// and expiry it knows.
    pub(crate) async fn insert_signed(&mut self, signed: &[SignedFile]) -> Result<()> {
        self.insert::<&str, &[u8]>(&[], signed).await
    }

    /// [`RepoTx::insert_files`] of `files` and `signed` together (in that
    /// order): the sha256 and `signed.expires` of `files` are read off
    /// their bytes, those of `signed` taken as they are (for a 1,024-bin
    /// snapshot, a hash and a parse of 35 KB fewer).
    pub(crate) async fn insert<R: AsRef<str>, B: AsRef<[u8]>>(
        &mut self,
        files: &[(R, u64, B)],
        signed: &[SignedFile],
    ) -> Result<()> {
        struct Row<'a> {
            role: &'a str,
            version: i64,
            sha256: Cow<'a, str>,
            bytes: &'a [u8],
            expires_at: Option<i64>,
        }
        let read = files.iter().map(|(role, version, bytes)| {
            let bytes = bytes.as_ref();
            Ok(Row {
                role: role.as_ref(),
                version: version_to_db(*version)?,
                sha256: Cow::Owned(tagtrust_shared::hashes::sha256_hex(bytes)),
                bytes,
                expires_at: expires_of(bytes).map(|t| t.timestamp()),
            })
        });
        let known = signed.iter().map(|file| {
            Ok(Row {
                role: &file.role,
                version: version_to_db(file.version)?,
                sha256: Cow::Borrowed(&file.sha256),
                bytes: &file.bytes,
                expires_at: Some(file.expires.timestamp()),
            })
        });
        let rows: Vec<Row> = read.chain(known).collect::<Result<_>>()?;
        for row in &rows {
            let newer = match &self.change {
                Some(Change::Update { version: noted, .. }) => row.version > *noted,
                _ => true,
            };
            if row.role == TopLevelRole::Timestamp.as_str() && newer {
                self.change = Some(Change::Update {
                    version: row.version,
                    sha256: row.sha256.to_string(),
                });
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.dirty = true;
        let created_at = now_secs();
        // One current row per role, its newest version here (an upsert may
        // not touch a row twice); older ones stay current only if newer
        // than what is stored.
        let mut current: BTreeMap<&str, &Row> = BTreeMap::new();
        for row in &rows {
            let newest = current.entry(row.role).or_insert(row);
            if row.version > newest.version {
                *newest = row;
            }
        }
        let current: Vec<&Row> = current.into_values().collect();
        const FILES: &str =
            "INSERT INTO metadata (gun, role, version, sha256, bytes, created_at, expires_at) VALUES";
        const CURRENT: &str =
            "INSERT INTO current_metadata (gun, role, version, expires_at) VALUES";
        const CURRENT_TAIL: &str =
            " ON CONFLICT (gun, role) DO UPDATE SET version = excluded.version, \
             expires_at = excluded.expires_at WHERE current_metadata.version < excluded.version";
        type Q<'q> = Query<'q, Any, AnyArguments<'q>>;
        fn bind_file<'q>(query: Q<'q>, gun: &'q str, row: &'q Row<'q>, created_at: i64) -> Q<'q> {
            query
                .bind(gun)
                .bind(row.role)
                .bind(row.version)
                .bind(row.sha256.as_ref())
                .bind(row.bytes.to_vec())
                .bind(created_at)
                .bind(row.expires_at)
        }
        fn bind_current<'q>(query: Q<'q>, gun: &'q str, row: &'q Row<'q>) -> Q<'q> {
            query
                .bind(gun)
                .bind(row.role)
                .bind(row.version)
                .bind(row.expires_at)
        }
        if self.backend == Backend::Sqlite && rows.len() <= MAX_ROWS_PER_INSERT {
            // Both statements in one execute (its parameters are numbered
            // across the text): one hop to sqlx's SQLite worker thread, not
            // two (BENCHMARKS.md, 2026-12-07).
            let sql = format!(
                "{}; {}",
                values_statement(FILES, rows.len(), 7, ""),
                values_statement_after(rows.len() * 7, CURRENT, current.len(), 4, CURRENT_TAIL)
            );
            let mut query = sqlx::query(&sql);
            for row in &rows {
                query = bind_file(query, &self.gun, row, created_at);
            }
            for row in &current {
                query = bind_current(query, &self.gun, row);
            }
            query.execute(&mut *self.tx).await?;
            return Ok(());
        }
        for chunk in rows.chunks(MAX_ROWS_PER_INSERT) {
            let sql = values_statement(FILES, chunk.len(), 7, "");
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = bind_file(query, &self.gun, row, created_at);
            }
            query.execute(&mut *self.tx).await?;
        }
        for chunk in current.chunks(MAX_ROWS_PER_INSERT) {
            let sql = values_statement(CURRENT, chunk.len(), 4, CURRENT_TAIL);
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = bind_current(query, &self.gun, row);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Record the soonest expiry of the repository's current hashed bins
    /// (`bins-…`) for the scheduler: called by whatever signs server-held
    /// bins. A primary-key range of the repository's own rows.
    pub(crate) async fn note_bins_expiry(&mut self) -> Result<()> {
        sqlx::query(
            "UPDATE repositories SET bins_expire_at = \
             (SELECT MIN(c.expires_at) FROM current_metadata c \
              WHERE c.gun = $1 AND c.role >= 'bins-' AND c.role < 'bins.') \
             WHERE gun = $1",
        )
        .bind(&self.gun)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The server no longer signs the repository's bins (its targets
    /// delegates them elsewhere now): the scheduler stops looking.
    pub(crate) async fn forget_bins_expiry(&mut self) -> Result<()> {
        sqlx::query("UPDATE repositories SET bins_expire_at = NULL WHERE gun = $1")
            .bind(&self.gun)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Commit, adding the changefeed record of what this transaction did
    /// (if anything) as its last statement.
    pub async fn commit(mut self) -> Result<()> {
        let deleted = matches!(self.change, Some(Change::Deletion));
        // PostgreSQL: the channels told of this commit, delivered to every
        // listening process only if it commits.
        let mut channels = Vec::new();
        if self.backend == Backend::Postgres {
            if self.dirty && self.cache.enabled() {
                channels.push(CHANGES_CHANNEL);
            }
            if deleted {
                channels.push(DELETIONS_CHANNEL);
            }
        }
        match self.change.take() {
            Some(change) => self.record_change(change, &channels).await?,
            None => {
                for channel in channels {
                    sqlx::query("SELECT 1 AS sent FROM pg_notify($1, $2)")
                        .bind(channel)
                        .bind(&self.gun)
                        .execute(&mut *self.tx)
                        .await?;
                }
            }
        }
        self.tx.commit().await?;
        if self.backend == Backend::Sqlite {
            self.wal_written.notify_one();
        }
        if self.dirty {
            self.cache.invalidate(&self.gun);
        }
        if deleted {
            self.files.clear();
        }
        Ok(())
    }

    /// Insert one changefeed record. On PostgreSQL, first take the one
    /// changefeed lock, held until commit: ids come from a sequence, and
    /// without it a transaction could take id 5, a second take id 6 and
    /// commit first, and a follower that had read 6 would never see 5. With
    /// it, records commit in id order. It is the transaction's last lock
    /// (after the repository's), so it cannot deadlock, and it is held
    /// only for this insert and the commit. SQLite writers are serialised
    /// already.
    ///
    /// On PostgreSQL the lock, the insert and the `notify` of `channels`
    /// are one statement, one round trip instead of three (0.03–0.13 ms
    /// of a 3.3–3.6 ms binned publish: BENCHMARKS.md, 2026-12-08). The
    /// insert takes its row from the lock's result, so the lock is taken
    /// before the sequence gives the record its id.
    async fn record_change(&mut self, change: Change, channels: &[&str]) -> Result<()> {
        let (category, version, sha256) = match change {
            Change::Update { version, sha256 } => (ChangeCategory::Update, version, sha256),
            Change::Deletion => (ChangeCategory::Deletion, 0, String::new()),
        };
        let statement = match self.backend {
            Backend::Sqlite => {
                "INSERT INTO changefeed (gun, version, sha256, category, created_at) \
                 VALUES ($1, $2, $3, $4, $5)"
            }
            Backend::Postgres => {
                "WITH locked AS (SELECT pg_advisory_xact_lock($6) AS l), \
                 recorded AS (\
                   INSERT INTO changefeed (gun, version, sha256, category, created_at) \
                   SELECT $1, $2, $3, $4, $5 FROM locked RETURNING id) \
                 SELECT 1 AS sent FROM recorded, \
                   unnest(string_to_array($7, ',')) AS channel, pg_notify(channel, $1)"
            }
        };
        let mut query = sqlx::query(statement)
            .bind(&self.gun)
            .bind(version)
            .bind(sha256)
            .bind(category.as_str())
            .bind(now_secs());
        if self.backend == Backend::Postgres {
            query = query.bind(CHANGEFEED_LOCK).bind(channels.join(","));
        }
        query.execute(&mut *self.tx).await?;
        if self.commit_delay_ms > 0 {
            let delay = rand::random::<u64>() % (self.commit_delay_ms + 1);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod repo_tx_tests {
    //! `RepoTx` against real databases: SQLite in a temporary directory,
    //! and PostgreSQL (a fresh database) when `TAGTRUST_TEST_POSTGRES_URL`
    //! is set.
    use super::*;
    use crate::dialect::Dialect;
    use sqlx::Connection;

    /// A connected store and what to drop after.
    struct Db {
        storage: Storage,
        _dir: tempfile::TempDir,
        postgres: Option<(String, String)>,
    }

    impl Db {
        async fn drop_database(self) {
            self.storage.pool.close().await;
            if let Some((admin, name)) = self.postgres {
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                // FORCE: the store's change listener may still be connected.
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// SQLite, then PostgreSQL if configured.
    async fn databases() -> Vec<Db> {
        let mut out = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        out.push(Db {
            storage: Storage::connect(&settings).await.unwrap(),
            _dir: dir,
            postgres: None,
        });
        if let Some(admin) = std::env::var("TAGTRUST_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            let name = format!("tagtrust_unit_{:016x}", rand::random::<u64>());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            let dir = tempfile::tempdir().unwrap();
            let settings = Settings {
                data_dir: dir.path().to_path_buf(),
                database_url: Some(format!("{base}/{name}")),
                ..Default::default()
            };
            out.push(Db {
                storage: Storage::connect(&settings).await.unwrap(),
                _dir: dir,
                postgres: Some((admin, name)),
            });
        }
        out
    }

    async fn lock_seq(storage: &Storage, gun: &str) -> Option<i64> {
        sqlx::query("SELECT lock_seq FROM repositories WHERE gun = $1")
            .bind(gun)
            .fetch_optional(&storage.pool)
            .await
            .unwrap()
            .map(|row| row.try_get("lock_seq").unwrap())
    }

    /// The lock's one statement creates the row, bumps `lock_seq` and
    /// reads the flags; the setters change what the transaction sees and,
    /// once committed, what the next lock reads; a rollback keeps nothing.
    #[tokio::test]
    async fn lock_reads_the_repository_flags() {
        for db in databases().await {
            let storage = &db.storage;
            let repo = storage.lock("example.com/new").await.unwrap();
            assert_eq!(
                repo.flags,
                RepoFlags {
                    mirrored: false,
                    dialect: None,
                    awaiting_rotation: false
                }
            );
            drop(repo);
            assert_eq!(
                lock_seq(storage, "example.com/new").await,
                None,
                "rolled back"
            );

            let mut repo = storage.lock("example.com/a").await.unwrap();
            repo.set_dialect(Dialect::Notary).await.unwrap();
            repo.set_awaiting_rotation(true).await.unwrap();
            assert_eq!(repo.dialect(), Some(Dialect::Notary));
            assert!(repo.is_awaiting_rotation() && !repo.is_mirrored());
            repo.commit().await.unwrap();
            assert_eq!(lock_seq(storage, "example.com/a").await, Some(1));

            let mut repo = storage.lock("example.com/a").await.unwrap();
            assert_eq!(repo.dialect(), Some(Dialect::Notary));
            assert!(repo.is_awaiting_rotation());
            repo.set_awaiting_rotation(false).await.unwrap();
            repo.mark_mirrored().await.unwrap();
            assert!(repo.is_mirrored() && !repo.is_awaiting_rotation());
            repo.commit().await.unwrap();

            let repo = storage.lock("example.com/a").await.unwrap();
            assert_eq!(
                repo.flags,
                RepoFlags {
                    mirrored: true,
                    dialect: Some(Dialect::Notary),
                    awaiting_rotation: false
                }
            );
            repo.commit().await.unwrap();
            assert_eq!(lock_seq(storage, "example.com/a").await, Some(3));
            db.drop_database().await;
        }
    }

    async fn current_expiry(storage: &Storage, gun: &str, role: &str) -> i64 {
        sqlx::query("SELECT expires_at FROM current_metadata WHERE gun = $1 AND role = $2")
            .bind(gun)
            .bind(role)
            .fetch_one(&storage.pool)
            .await
            .unwrap()
            .try_get("expires_at")
            .unwrap()
    }

    /// A file whose `signed.expires` is `expires` (so `expires_at` is set).
    fn file(version: u64, expires: &str) -> Vec<u8> {
        format!(r#"{{"signed":{{"expires":"{expires}","version":{version}}}}}"#).into_bytes()
    }

    /// Many files in one call, more than one statement's worth, several
    /// versions of one role among them: every one stored with its hash and
    /// expiry, the newest of each role current, an older one inserted
    /// later not current, and the newest timestamp in the changefeed.
    #[tokio::test]
    async fn insert_files_stores_every_file_and_the_newest_is_current() {
        for db in databases().await {
            let storage = &db.storage;
            let gun = "example.com/files";
            let mut files: Vec<(String, u64, Vec<u8>)> = (0..MAX_ROWS_PER_INSERT + 10)
                .map(|i| (format!("bins-{i:03x}"), 1, file(1, "2030-01-01T00:00:00Z")))
                .collect();
            files.push(("targets".into(), 2, file(2, "2031-01-01T00:00:00Z")));
            files.push(("targets".into(), 1, file(1, "2030-06-01T00:00:00Z")));
            files.push(("timestamp".into(), 4, file(4, "2030-01-02T00:00:00Z")));
            files.push(("timestamp".into(), 3, file(3, "2030-01-01T00:00:00Z")));
            let mut repo = storage.lock(gun).await.unwrap();
            repo.insert_files(&files).await.unwrap();
            repo.commit().await.unwrap();

            let mut repo = storage.lock(gun).await.unwrap();
            let stored = repo.stored_versions().await.unwrap();
            assert_eq!(stored.len(), files.len());
            for (role, version, bytes) in &files {
                assert!(stored.contains(&(
                    role.clone(),
                    *version,
                    tagtrust_shared::hashes::sha256_hex(bytes)
                )));
            }
            let current = repo.current_files().await.unwrap();
            assert_eq!(current.len(), MAX_ROWS_PER_INSERT + 12);
            let of = |role: &str| current.iter().find(|f| f.role == role).unwrap();
            assert_eq!(of("targets").version, 2);
            assert_eq!(of("targets").bytes, file(2, "2031-01-01T00:00:00Z"));
            assert_eq!(of("timestamp").version, 4);
            // An older version stored later stays stored, not current.
            repo.insert_files(&[("bins-000", 0, file(0, "2029-01-01T00:00:00Z"))])
                .await
                .unwrap();
            repo.commit().await.unwrap();
            assert_eq!(current_expiry(storage, gun, "targets").await, 1_924_992_000);
            assert_eq!(
                current_expiry(storage, gun, "bins-000").await,
                1_893_456_000
            );
            let feed = storage
                .changes(
                    &FeedScope::Gun(gun.to_string()),
                    FeedQuery {
                        cursor: Cursor::After(0),
                        limit: 10,
                    },
                )
                .await
                .unwrap();
            let versions: Vec<u64> = feed.iter().map(|c| c.version).collect();
            assert_eq!(versions, [4], "one record, the newest timestamp");
            db.drop_database().await;
        }
    }

    /// Bytes are left out exactly for the files named by role and sha256:
    /// not for another version of a named role, nor for the same bytes
    /// under another role's name.
    #[tokio::test]
    async fn current_files_known_leaves_out_only_the_named_files() {
        for db in databases().await {
            let gun = "example.com/known";
            let mut repo = db.storage.lock(gun).await.unwrap();
            let same = file(1, "2030-01-01T00:00:00Z");
            repo.insert_files(&[
                ("root", 1, file(1, "2031-01-01T00:00:00Z")),
                ("targets", 1, file(1, "2032-01-01T00:00:00Z")),
                ("a", 1, same.clone()),
                ("b", 1, same.clone()),
            ])
            .await
            .unwrap();
            repo.commit().await.unwrap();
            let sha = |bytes: &[u8]| tagtrust_shared::hashes::sha256_hex(bytes);
            let targets_v1 = sha(&file(1, "2032-01-01T00:00:00Z"));
            let mut repo = db.storage.lock(gun).await.unwrap();
            repo.insert_files(&[("targets", 2, file(2, "2032-01-01T00:00:00Z"))])
                .await
                .unwrap();
            let known = [
                format!("root:{}", sha(&file(1, "2031-01-01T00:00:00Z"))),
                format!("targets:{targets_v1}"),
                format!("a:{}", sha(&same)),
            ];
            let mut read = repo
                .current_files_known(&["root", "targets", "a", "b", "none"], &known)
                .await
                .unwrap();
            read.sort_by(|x, y| x.role.cmp(&y.role));
            let summary: Vec<(&str, u64, bool)> = read
                .iter()
                .map(|f| (f.role.as_str(), f.version, f.bytes.is_some()))
                .collect();
            assert_eq!(
                summary,
                [
                    ("a", 1, false),
                    ("b", 1, true),
                    ("root", 1, false),
                    ("targets", 2, true)
                ]
            );
            assert_eq!(read[1].bytes.as_deref(), Some(&same[..]));
            assert_eq!(read[0].sha256, sha(&same));
            // Nothing known: every file with its bytes.
            let all = repo.current_files_known(&["root", "a"], &[]).await.unwrap();
            assert!(all.iter().all(|f| f.bytes.is_some()) && all.len() == 2);
            drop(repo);
            db.drop_database().await;
        }
    }

    /// A transaction reads the repository's keys once; a key it inserts
    /// is among them after.
    #[tokio::test]
    async fn keys_are_read_once_and_see_a_new_key() {
        for db in databases().await {
            let mut repo = db.storage.lock("example.com/keys").await.unwrap();
            let timestamp = KeyRole::Top(TopLevelRole::Timestamp);
            assert!(repo.keys(timestamp).await.unwrap().is_empty());
            let first = tagtrust_shared::SigningKey::generate().public_key();
            repo.insert_key(timestamp, &first, b"sealed-1")
                .await
                .unwrap();
            let second = tagtrust_shared::SigningKey::generate().public_key();
            repo.insert_key(KeyRole::Bins, &second, b"sealed-2")
                .await
                .unwrap();
            let keys = repo.keys(timestamp).await.unwrap();
            assert_eq!(keys.len(), 1);
            assert!(keys[0].public_key.same_key(&first));
            assert_eq!(keys[0].sealed_seed, b"sealed-1");
            let bins = repo.keys(KeyRole::Bins).await.unwrap();
            assert_eq!(bins.len(), 1);
            assert!(bins[0].public_key.same_key(&second));
            assert!(repo
                .keys(KeyRole::Top(TopLevelRole::Snapshot))
                .await
                .unwrap()
                .is_empty());
            repo.commit().await.unwrap();
            db.drop_database().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::database_unavailable;

    #[test]
    fn outages_are_told_apart_from_bad_requests() {
        for (code, message) in [
            (
                Some("55000"),
                "database \"x\" is not currently accepting connections",
            ),
            (
                Some("57P01"),
                "terminating connection due to administrator command",
            ),
            (Some("57P03"), "the database system is starting up"),
            (Some("53300"), "sorry, too many clients already"),
            (Some("08006"), "connection failure"),
            (Some("5"), "database is locked"),
            (Some("8"), "attempt to write a readonly database"),
            (Some("13"), "database or disk is full"),
            (Some("14"), "unable to open database file"),
        ] {
            assert!(database_unavailable(code, message), "{code:?} {message}");
        }
        for (code, message) in [
            (
                Some("23505"),
                "duplicate key value violates unique constraint",
            ),
            (
                Some("55000"),
                "cannot execute nextval() in a read-only transaction",
            ),
            (Some("42P01"), "relation \"metadata\" does not exist"),
            (Some("1555"), "UNIQUE constraint failed: metadata.gun"),
            (None, "no such table: metadata"),
        ] {
            assert!(!database_unavailable(code, message), "{code:?} {message}");
        }
    }
}
