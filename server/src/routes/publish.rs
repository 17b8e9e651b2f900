//! `POST /v2/{gun}/_trust/tuf/`: read the multipart upload within the
//! limits, then validate, store and re-sign in one transaction holding the
//! repository lock.

use crate::auth::Action;
use crate::dialect::Dialect;
use crate::error::ApiError;
use crate::kept_current::{Kept, KeptCurrent, SnapshotListing};
use crate::online::notary_signing;
use crate::online::signing::{self, SnapshotUpdate};
use crate::publish::notary::SnapshotStep;
use crate::publish::{self, Upload};
use crate::state::AppState;
use crate::storage::StoredFile;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::{FutureExt, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use tagtrust_shared::TopLevelRole;

fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!("request body larger than {limit} bytes"))
        .with_detail(json!({ "limit": limit }))
}

/// How much one upload may carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) body_bytes: usize,
    pub(crate) parts: usize,
    pub(crate) file_bytes: usize,
}

impl Limits {
    fn publish(settings: &crate::configuration::Settings) -> Limits {
        Limits {
            body_bytes: settings.max_body_bytes,
            parts: settings.max_parts,
            file_bytes: settings.max_file_bytes,
        }
    }
}

/// Read the uploaded files, refusing oversized bodies, parts or files,
/// too many parts, unexpected fields and too deeply nested JSON. Each
/// part's filename is read by `name` (into a role, or a versioned file).
pub(crate) async fn read_parts<N: std::fmt::Display>(
    req: &HttpRequest,
    payload: web::Payload,
    settings: &crate::configuration::Settings,
    limits: Limits,
    name: impl Fn(&str) -> Result<N, ApiError>,
) -> Result<Vec<(N, Vec<u8>)>, ApiError> {
    let body = read_body(req, payload, settings, limits.body_bytes).await?;
    // Parse from memory. The stream never waits, so the parse either
    // finishes at once or is stalled: actix-multipart waits forever for
    // more data when a body ends inside a part or without the closing
    // boundary, which would hold the connection open indefinitely.
    let stream =
        futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(body) });
    parse_multipart(req, stream, settings, limits, name)
        .now_or_never()
        .unwrap_or_else(|| {
            Err(ApiError::bad_request(
                "BAD_MULTIPART",
                "truncated multipart/form-data body (it ends inside a part or without the closing boundary)",
            ))
        })
}

/// The whole request body, at most `max_body` bytes (413 beyond, also for
/// a body without `Content-Length`), within `body_timeout_secs` (408).
pub(crate) async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    settings: &crate::configuration::Settings,
    max_body: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(too_large(max_body));
    }
    // Buffer the whole body first, counting bytes, so a body without
    // Content-Length is cut off at the limit too; a body that does not
    // arrive within the timeout is answered 408 instead of holding the
    // connection (and an upload slot).
    let timeout = std::time::Duration::from_secs(settings.body_timeout_secs);
    let read = async move {
        let mut body = web::BytesMut::new();
        let mut payload = payload;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(
                    "BAD_BODY",
                    format!("the request body is incomplete or its framing is invalid ({e})"),
                )
            })?;
            if body.len() + chunk.len() > max_body {
                return Err(too_large(max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(timeout, read).await.map_err(|_| {
        ApiError::new(
            actix_web::http::StatusCode::REQUEST_TIMEOUT,
            "BODY_TIMEOUT",
            format!(
                "the request body did not arrive within {}s",
                settings.body_timeout_secs
            ),
        )
        .with_detail(json!({ "limit_secs": settings.body_timeout_secs }))
    })??;
    Ok(body.freeze())
}

/// Split an in-memory multipart body into the uploaded files.
async fn parse_multipart<N: std::fmt::Display>(
    req: &HttpRequest,
    stream: impl futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>
        + 'static,
    settings: &crate::configuration::Settings,
    limits: Limits,
    name: impl Fn(&str) -> Result<N, ApiError>,
) -> Result<Vec<(N, Vec<u8>)>, ApiError> {
    let mut multipart = Multipart::new(req.headers(), stream);
    let multipart_error = |e: actix_multipart::MultipartError| {
        ApiError::bad_request(
            "BAD_MULTIPART",
            format!("malformed multipart/form-data body: {e}"),
        )
    };
    let mut uploads = Vec::new();
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        if uploads.len() >= limits.parts {
            return Err(ApiError::bad_request(
                "TOO_MANY_PARTS",
                format!("at most {} files per upload", limits.parts),
            )
            .with_detail(json!({ "limit": limits.parts })));
        }
        if field.name() != Some("files") {
            return Err(ApiError::bad_request(
                "BAD_MULTIPART",
                format!(
                    "unexpected form field {:?}; upload each role file as field \"files\"",
                    field.name().unwrap_or("")
                ),
            ));
        }
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "BAD_MULTIPART",
                    "a part has no filename (it must be the role name)",
                )
            })?
            .to_string();
        let role = name(&filename)?;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if bytes.len() + chunk.len() > limits.file_bytes {
                return Err(ApiError::too_large(format!(
                    "{role} is larger than {} bytes",
                    limits.file_bytes
                ))
                .with_detail(json!({ "role": role.to_string(), "limit": limits.file_bytes })));
            }
            bytes.extend_from_slice(&chunk);
        }
        if publish::json_depth_exceeds(&bytes, settings.max_json_depth) {
            return Err(ApiError::invalid_role(
                "TOO_DEEP",
                &role.to_string(),
                format!(
                    "{role} nests JSON deeper than {} levels",
                    settings.max_json_depth
                ),
            ));
        }
        uploads.push((role, bytes));
    }
    Ok(uploads)
}

/// Validate and store `uploads` and sign what the server signs, in one
/// transaction under the repository's lock, in the repository's dialect
/// (for a first publish, the uploaded root's).
async fn apply(state: &AppState, gun: &str, uploads: Vec<Upload>) -> Result<Value, ApiError> {
    let mut repo = state.storage.lock(gun).await?;
    if repo.is_mirrored() {
        return Err(ApiError::mirrored(gun));
    }
    let stored_dialect = repo.dialect();
    let dialect = stored_dialect.unwrap_or_else(|| {
        uploads
            .iter()
            .find(|u| u.role == TopLevelRole::Root.as_str())
            .and_then(|u| Dialect::of_file(&u.bytes))
            .unwrap_or(Dialect::Tuf)
    });
    if let Some(other) = uploads
        .iter()
        .find(|u| Dialect::of_file(&u.bytes).is_some_and(|d| d != dialect))
    {
        return Err(publish::Refusal::invalid(
            &other.role,
            publish::Check::WrongDialect,
            format!(
                "{gun} is a {dialect} repository, and {} is written in the other dialect",
                other.role
            ),
        )
        .into());
    }
    if stored_dialect.is_none() {
        // In the publish's transaction: undone if the publish is refused.
        repo.set_dialect(dialect).await?;
    }
    match dialect {
        Dialect::Tuf => apply_tuf(state, repo, uploads).await,
        Dialect::Notary => apply_notary(state, repo, uploads).await,
    }
}

/// The `meta` of the stored snapshot among `files` (empty without one),
/// read as `C` (a map of entries, or a [`SnapshotListing`]). Read straight
/// into these types, not through
/// [`tagtrust_shared::Metadata::from_bytes`]: its value tree and canonical
/// form of the whole file were a quarter of a binned publish's CPU (1,024
/// entries), and this snapshot is the server's own, signed in the
/// transaction that stored it (nothing in it is checked here).
pub(crate) fn stored_snapshot_meta<C: serde::de::DeserializeOwned + Default>(
    files: &[StoredFile],
) -> Result<C, ApiError> {
    match files.iter().find(|f| f.role == TopLevelRole::Snapshot) {
        Some(file) => snapshot_meta_of(&file.bytes),
        None => Ok(Default::default()),
    }
}

/// The `meta` of the stored snapshot `bytes` (see [`stored_snapshot_meta`]).
fn snapshot_meta_of<C: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<C, ApiError> {
    #[derive(serde::Deserialize)]
    struct Envelope<C> {
        signed: Signed<C>,
    }
    #[derive(serde::Deserialize)]
    struct Signed<C> {
        #[serde(rename = "_type")]
        kind: String,
        meta: C,
    }
    let corrupt =
        |reason: String| ApiError::internal(format!("stored snapshot does not parse: {reason}"));
    let envelope: Envelope<C> =
        serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if envelope.signed.kind != TopLevelRole::Snapshot.as_str() {
        return Err(corrupt(format!("its _type is {:?}", envelope.signed.kind)));
    }
    Ok(envelope.signed.meta)
}

/// What [`current_tuf`] read: the repository as the publish core takes it,
/// the server's bin keys, and the sha256 of each file read by role (what
/// can be kept of it, [`KeptCurrent::of`]).
struct CurrentTuf {
    current: publish::CurrentRepository,
    server_keys: Vec<tagtrust_shared::PublicKey>,
    read: BTreeMap<String, String>,
}

/// The current files of a locked spec-TUF repository as the publish core
/// takes them for `uploads` (only what it needs read:
/// [`publish::unread_bins`]), with the server's bin keys. What `kept`
/// holds of them (the last publish's through this process) is taken from
/// it, not read.
async fn current_tuf(
    repo: &mut crate::storage::RepoTx,
    mut kept: KeptCurrent,
    uploads: &[Upload],
) -> Result<CurrentTuf, ApiError> {
    let corrupt = |e: publish::CorruptFile| ApiError::internal(e.to_string());
    let mut current = publish::CurrentRepository::default();
    let mut read = BTreeMap::new();
    let mut listing = None;
    // The top-level roles first; the delegated ones the snapshot lists
    // below, less the bins `unread_bins` leaves (uploaded ones too).
    let top = TopLevelRole::ALL.map(TopLevelRole::as_str);
    let head = repo.current_files_known(&top, &kept.known(&top)).await?;
    let snapshot_bytes = head
        .iter()
        .find(|f| f.role == TopLevelRole::Snapshot)
        .and_then(|f| f.bytes.clone());
    kept.add_read(head, &mut current, &mut listing, &mut read)
        .map_err(corrupt)?;
    // Which targets roles there are, and their versions: the current
    // snapshot's meta, which this server signed in the transaction that
    // stored them (one row to read, not one per bin). What `unread_bins`
    // leaves in it is read below.
    let mut listed = match (listing.take(), snapshot_bytes) {
        (Some(kept), _) => kept,
        (None, Some(bytes)) => snapshot_meta_of(&bytes)?,
        (None, None) => SnapshotListing::default(),
    };
    let targets = TopLevelRole::Targets.as_str();
    current.unread_bins = match current.roles.get(targets) {
        Some(stored) => publish::unread_bins(&stored.metadata, &mut listed.0, uploads),
        None => Default::default(),
    };
    // Read too: any uploaded role the listing does not name, in case it is
    // stored all the same (the listing is the server's own, so never
    // today): its version is checked against the stored file, not taken
    // to be new. The listed names are gathered into a set only when some
    // upload is neither top-level nor an unread bin (a tag change uploads
    // one bin; a re-binning every bin, against 1,025 listed names).
    let mut unlisted: Vec<&str> = uploads
        .iter()
        .map(|u| u.role.as_str())
        .filter(|role| TopLevelRole::parse(role).is_none() && !current.unread_bins.contains(role))
        .collect();
    if !unlisted.is_empty() {
        let names: std::collections::HashSet<&str> = listed.roles().map(|(role, _)| role).collect();
        unlisted.retain(|role| !names.contains(role));
    }
    let rest: Vec<&str> = listed
        .roles()
        .map(|(role, _)| role)
        .filter(|role| TopLevelRole::parse(role).is_none())
        .chain(unlisted)
        .collect();
    let files = repo.current_files_known(&rest, &kept.known(&rest)).await?;
    kept.add_read(files, &mut current, &mut listing, &mut read)
        .map_err(corrupt)?;
    // A bin that some role also names explicitly is walked as that role:
    // read it too (a clash `check_unique_delegations` refuses to create).
    let named = current.named_unread_bins();
    if !named.is_empty() {
        let names: Vec<&str> = named.iter().map(String::as_str).collect();
        let files = repo.current_files_known(&names, &[]).await?;
        kept.add_read(files, &mut current, &mut listing, &mut read)
            .map_err(corrupt)?;
        for name in &named {
            current.unread_bins.remove(name);
        }
    }
    let server_keys = signing::bin_keys(repo).await?;
    Ok(CurrentTuf {
        current,
        server_keys,
        read,
    })
}

async fn apply_tuf(
    state: &AppState,
    mut repo: crate::storage::RepoTx,
    uploads: Vec<Upload>,
) -> Result<Value, ApiError> {
    for upload in &uploads {
        publish::role_from_filename(&upload.role)?;
    }
    let kept = state.kept.take(repo.gun()).unwrap_or_default();
    let CurrentTuf {
        mut current,
        server_keys,
        mut read,
    } = current_tuf(&mut repo, kept, &uploads).await?;
    let now = chrono::Utc::now();
    let planned = publish::plan(&mut current, uploads, now).and_then(|mut plan| {
        let bins = publish::server_bins::bins_for_publish(
            &current,
            &mut plan,
            &server_keys,
            signing::bins_expiry(now, &state.settings),
        )?;
        Ok((plan, bins))
    });
    let (mut plan, server_bins) = match planned {
        Ok(planned) => planned,
        Err(refusal) => {
            // Nothing changed: what was read stays as good to keep.
            state
                .kept
                .put(repo.gun(), KeptCurrent::of(current, &read, None));
            return Err(refusal.into());
        }
    };
    // The repository as it will be: the uploaded roles replace the read ones.
    for (role, _, bytes) in &plan.store {
        read.insert(role.clone(), tagtrust_shared::hashes::sha256_hex(bytes));
        if role == TopLevelRole::Root.as_str() {
            current.root = Some(plan.root.clone());
        } else if let Some(metadata) = plan.parsed.remove(role) {
            let bytes = bytes.clone();
            current
                .roles
                .insert(role.clone(), publish::CurrentRole { metadata, bytes });
        }
    }
    let versions = plan
        .store
        .iter()
        .map(|(role, version, _)| (role.clone(), json!(version)))
        .collect();
    let next = NextOnline {
        root: &plan.root.signed,
        store: plan.store,
        server_bins,
        snapshot_version: plan.snapshot_version,
        snapshot_meta: plan.snapshot_meta,
        timestamp_version: plan.timestamp_version,
        kept: Some((current, read)),
    };
    sign_and_commit(state, repo, next, versions, now).await
}

async fn apply_notary(
    state: &AppState,
    mut repo: crate::storage::RepoTx,
    uploads: Vec<Upload>,
) -> Result<Value, ApiError> {
    let gun = repo.gun().to_string();
    let files = repo.current_files().await?;
    let current = publish::notary::NotaryCurrent::from_files(files.iter().map(StoredFile::as_row))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let snapshot_keys = repo.public_keys(TopLevelRole::Snapshot.into()).await?;
    let now = chrono::Utc::now();
    let plan = publish::notary::plan(&current, &gun, uploads, &snapshot_keys, now)
        .map_err(notary_refusal)?;
    let timestamp_keys = repo.public_keys(TopLevelRole::Timestamp.into()).await?;
    publish::notary::check_timestamp_key(&plan.root, &gun, &timestamp_keys)
        .map_err(notary_refusal)?;
    repo.insert_files(&plan.store).await?;
    let mut versions: Map<String, Value> = plan
        .store
        .iter()
        .map(|(role, version, _)| (role.clone(), json!(version)))
        .collect();
    let snapshot = match plan.snapshot {
        // Stored above with the other uploads.
        SnapshotStep::Uploaded { version, bytes } => SnapshotUpdate::Keep { version, bytes },
        SnapshotStep::Generate { version, meta } => SnapshotUpdate::New { version, meta },
    };
    let (master, settings) = (&state.master, &state.settings);
    let signed = notary_signing::sign_and_store(
        &mut repo,
        master,
        settings,
        &plan.root,
        snapshot,
        plan.timestamp_version,
        now,
    )
    .await?;
    // An imported repository's root now lists this server's timestamp key
    // (checked above): it is an ordinary hosted one from here on.
    if repo.is_awaiting_rotation() {
        repo.set_awaiting_rotation(false).await?;
    }
    repo.commit().await?;
    if let Some(version) = signed.snapshot_version {
        versions.insert(TopLevelRole::Snapshot.to_string(), json!(version));
    }
    versions.insert(
        TopLevelRole::Timestamp.to_string(),
        json!(signed.timestamp_version),
    );
    Ok(json!({ "gun": gun, "versions": versions }))
}

/// A refused Notary publish, answered so the notary CLI prints the reason:
/// 400 (notary-server answers an old version with 400 `VERSION` too) with
/// Notary's typed error as the `detail` (`{"Name": "ErrBadTargets",
/// "Error": {"Msg": …}}`, what its client decodes), by the role refused.
fn notary_refusal(refusal: publish::Refusal) -> ApiError {
    use publish::{Check, Refusal};
    let message = refusal.to_string();
    let (name, error) = match &refusal {
        Refusal::Invalid {
            role,
            check: Check::Missing,
            ..
        } if role == TopLevelRole::Snapshot.as_str() => (
            "ErrBadHierarchy",
            json!({ "Missing": role, "Msg": message }),
        ),
        Refusal::Invalid { role, .. } => (
            match role.as_str() {
                "root" => "ErrBadRoot",
                "snapshot" => "ErrBadSnapshot",
                "targets" => "ErrBadTargets",
                role if role.starts_with("targets/") => "ErrBadTargets",
                _ => "ErrValidation",
            },
            json!({ "Msg": message }),
        ),
        Refusal::Conflict { .. } | Refusal::NoFiles => ("ErrValidation", json!({ "Msg": message })),
    };
    let answer = ApiError::from(refusal);
    let code = if answer.status == actix_web::http::StatusCode::CONFLICT {
        "VERSION"
    } else {
        answer.code
    };
    ApiError::bad_request(code, message).with_detail(json!({ "Name": name, "Error": error }))
}

/// What ends a change: the uploaded files to store, then what the server
/// signs: the bins it holds that the change touched, snapshot and timestamp.
pub(crate) struct NextOnline<'a> {
    pub(crate) root: &'a tagtrust_shared::Root,
    /// Uploaded files to store, as (role, version, exact bytes).
    pub(crate) store: signing::NewFiles,
    pub(crate) server_bins: Option<(
        publish::server_bins::HeldBins,
        Vec<publish::server_bins::NewBin>,
    )>,
    pub(crate) snapshot_version: u64,
    pub(crate) snapshot_meta: std::collections::BTreeMap<String, tagtrust_shared::MetaFile>,
    pub(crate) timestamp_version: u64,
    /// The repository as it will be and the sha256s of its files so far,
    /// to keep once committed ([`KeptCurrent::of`]); `None` (a change that
    /// read nothing kept) keeps what was kept, with the new snapshot's
    /// listing.
    pub(crate) kept: Option<(publish::CurrentRepository, BTreeMap<String, String>)>,
}

/// Sign `next`'s bins, snapshot and timestamp, store them with its uploaded
/// files (one multi-row insert: each statement is a round trip to the
/// database, and to sqlx's SQLite worker thread), commit, and answer
/// `{"gun", "versions"}`: the `versions` stored so far and the new bins',
/// snapshot's and timestamp's.
pub(crate) async fn sign_and_commit(
    state: &AppState,
    mut repo: crate::storage::RepoTx,
    next: NextOnline<'_>,
    mut versions: Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, ApiError> {
    let mut files = next.store;
    let signs_bins = next.server_bins.is_some();
    if let Some((held, bins)) = next.server_bins {
        let bins = signing::sign_bins(&mut repo, &state.master, &held, bins, now).await?;
        for (role, version, _) in &bins {
            versions.insert(role.clone(), json!(version));
        }
        files.extend(bins);
    }
    let signing::SignedFiles {
        files: online,
        snapshot_listing,
        ..
    } = signing::sign(
        &mut repo,
        &state.master,
        &state.settings,
        next.root,
        SnapshotUpdate::New {
            version: next.snapshot_version,
            meta: next.snapshot_meta,
        },
        next.timestamp_version,
        now,
    )
    .await?;
    repo.insert(&files, &online).await?;
    if signs_bins {
        repo.note_bins_expiry().await?;
    }
    let gun = repo.gun().to_string();
    repo.commit().await?;
    let mut kept = match next.kept {
        Some((current, read)) => KeptCurrent::of(current, &read, None),
        // A change that read nothing kept (tags.rs): what the last publish
        // left stays (each file is checked by its sha256 on use), with the
        // new snapshot's listing.
        None => state.kept.take(&gun).unwrap_or_default(),
    };
    kept.snapshot = snapshot_listing.map(|(sha256, value)| Kept { sha256, value });
    state.kept.put(&gun, kept);
    versions.insert(
        TopLevelRole::Snapshot.to_string(),
        json!(next.snapshot_version),
    );
    versions.insert(
        TopLevelRole::Timestamp.to_string(),
        json!(next.timestamp_version),
    );
    Ok(json!({ "gun": gun, "versions": versions }))
}

/// One of the `max_concurrent_uploads` slots (503 when none is free):
/// each upload holds up to its body limit in memory for up to
/// `body_timeout_secs`.
pub(crate) fn upload_permit(
    state: &AppState,
) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    state.uploads.try_acquire().map_err(|_| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "BUSY",
            format!(
                "{} uploads are already being received; retry shortly",
                state.settings.max_concurrent_uploads
            ),
        )
        .with_retry_after(1)
    })
}

pub(crate) async fn publish(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    gun: &tagtrust_shared::Gun,
) -> Result<HttpResponse, ApiError> {
    state.auth.require(req, Action::Push, gun.as_str()).await?;
    // Bound the publishes reading their bodies at once: each holds up to
    // max_body_bytes in memory for up to body_timeout_secs.
    let _upload = upload_permit(state)?;
    let uploads = read_parts(
        req,
        payload,
        &state.settings,
        Limits::publish(&state.settings),
        |filename| Ok(publish::upload_name(filename)?),
    )
    .await
    .map(|parts| {
        parts
            .into_iter()
            .map(|(role, bytes)| Upload { role, bytes })
            .collect()
    });
    let result = match uploads {
        Ok(uploads) => apply(state, gun.as_str(), uploads).await,
        Err(e) => Err(e),
    };
    answer(state, gun, result)
}

/// A publish's (or tag change's) answer, counted in the publish metrics
/// and logged.
pub(crate) fn answer(
    state: &AppState,
    gun: &tagtrust_shared::Gun,
    result: Result<Value, ApiError>,
) -> Result<HttpResponse, ApiError> {
    match result {
        Ok(body) => {
            state.metrics.publishes.with_label_values(&["ok"]).inc();
            tracing::info!(gun = %gun, versions = %body["versions"], "published");
            Ok(HttpResponse::Ok().json(body))
        }
        Err(e) => {
            let label = match e.status.as_u16() {
                409 => {
                    state.metrics.conflicts.inc();
                    "conflict"
                }
                400..=499 => "rejected",
                _ => "error",
            };
            state.metrics.publishes.with_label_values(&[label]).inc();
            tracing::info!(gun = %gun, status = e.status.as_u16(), code = e.code, message = %e.message, "publish refused");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parts = Vec<(String, Vec<u8>)>;

    /// Parse `body` from memory; `None` means the parser stalled.
    fn parse(body: &'static [u8]) -> Option<Result<Parts, ApiError>> {
        let req = actix_web::test::TestRequest::post()
            .insert_header(("content-type", "multipart/form-data; boundary=b"))
            .to_http_request();
        let stream = futures_util::stream::once(async move {
            Ok::<_, actix_web::error::PayloadError>(web::Bytes::from_static(body))
        });
        let settings = crate::configuration::Settings::default();
        parse_multipart(
            &req,
            stream,
            &settings,
            Limits::publish(&settings),
            |name| Ok(publish::role_from_filename(name)?),
        )
        .now_or_never()
    }

    const PART: &[u8] =
        b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\n{}\r\n";

    #[test]
    fn complete_body_parses_at_once() {
        let uploads = parse(b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\n{}\r\n--b--\r\n")
            .expect("no stall")
            .unwrap();
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads[0], ("targets".to_string(), b"{}".to_vec()));
    }

    /// The parser waits forever on these (actix-multipart 0.7), which is
    /// why `read_uploads` parses from memory and refuses a stall.
    #[test]
    fn truncated_bodies_stall_the_parser() {
        assert!(parse(PART).is_none(), "no closing boundary");
    }

    /// No prefix of a body yields a truncated file: each stalls, fails, or
    /// (once the closing boundary is there) carries the whole file.
    #[test]
    fn no_prefix_yields_a_truncated_file() {
        const FULL: &[u8] = b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\n{\"a\":1}\r\n--b--\r\n";
        for end in 0..FULL.len() {
            if let Some(Ok(uploads)) = parse(&FULL[..end]) {
                assert!(
                    uploads.iter().all(|(_, bytes)| bytes == b"{\"a\":1}"),
                    "prefix of {end} bytes"
                );
            }
        }
    }
}
