//! `POST /v2/{gun}/_trust/tags`: change tags of a repository whose hashed
//! bins the server signs (its publisher delegated them to the server's
//! `bins.key`). A `push:` token authorises the change; the body is a
//! [`TagChanges`] (`{"set": {TAG: target}, "remove": [TAG]}`), not signed
//! metadata. Under the repository lock (the one a signed publish takes, so
//! the two serialise), in one transaction: plan the change
//! ([`crate::publish::server_bins::plan_tag_changes`], pure), sign each
//! touched bin at its next version with the bin key, sign snapshot and
//! timestamp, commit. The answer has the new versions.

use super::publish::{
    answer, read_body, sign_and_commit, stored_snapshot_meta, upload_permit, NextOnline,
};
use crate::auth::Action;
use crate::error::ApiError;
use crate::online::signing;
use crate::publish::{self, server_bins};
use crate::state::AppState;
use crate::storage::StoredFile;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};
use tagtrust_shared::bins::TagChanges;
use tagtrust_shared::{Gun, TopLevelRole};

/// How a tag-change path ends.
pub(crate) const SUFFIX: &str = "/_trust/tags";

async fn apply(state: &AppState, gun: &str, changes: &TagChanges) -> Result<Value, ApiError> {
    let mut repo = state.storage.lock(gun).await?;
    if repo.is_mirrored() {
        return Err(ApiError::mirrored(gun));
    }
    if repo.dialect() == Some(crate::dialect::Dialect::Notary) {
        return Err(ApiError::bad_request(
            "WRONG_DIALECT",
            format!("{gun} is a Notary repository: it has no server-held bins"),
        ));
    }
    let now = chrono::Utc::now();
    let stored_error = |e: publish::CorruptFile| ApiError::internal(e.to_string());
    // Read only what the change needs: root, targets, the touched bins and
    // the snapshot's meta (not every bin of the repository).
    let top = TopLevelRole::ALL.map(TopLevelRole::as_str);
    let files = repo.current_files_of(&top).await?;
    let mut current = publish::CurrentRepository::from_files(files.iter().map(StoredFile::as_row))
        .map_err(stored_error)?;
    let touched = match current.roles.get(TopLevelRole::Targets.as_str()) {
        Some(targets) => server_bins::touched_bins(&targets.metadata.signed, changes),
        None => Default::default(),
    };
    let snapshot_meta = stored_snapshot_meta(&files)?;
    let touched: Vec<&str> = touched.iter().map(String::as_str).collect();
    let bins = repo.current_files_of(&touched).await?;
    current
        .add_files(bins.iter().map(StoredFile::as_row))
        .map_err(stored_error)?;
    let server_keys = signing::bin_keys(&mut repo).await?;
    let plan = server_bins::plan_tag_changes(
        &current,
        &snapshot_meta,
        &server_keys,
        changes,
        state.settings.max_tag_changes,
        signing::bins_expiry(now, &state.settings),
    )?;
    let next = NextOnline {
        root: &plan.root.signed,
        store: Vec::new(),
        server_bins: Some((plan.held, plan.bins)),
        snapshot_version: plan.snapshot_version,
        snapshot_meta: plan.snapshot_meta,
        timestamp_version: plan.timestamp_version,
        kept: None,
    };
    sign_and_commit(state, repo, next, Map::new(), now).await
}

/// Parse the body: JSON no deeper than the publish limit, a [`TagChanges`].
fn parse_changes(body: &[u8], max_depth: usize) -> Result<TagChanges, ApiError> {
    if publish::json_depth_exceeds(body, max_depth) {
        return Err(ApiError::bad_request(
            "TOO_DEEP",
            format!("the request body nests JSON deeper than {max_depth} levels"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "BAD_JSON",
            format!(
                "the body must be {{\"set\": {{TAG: {{\"length\": N, \"hashes\": {{\"sha256\": HEX}}, \"custom\": {{…}}}}}}, \
                 \"remove\": [TAG]}}: {e}"
            ),
        )
    })
}

pub(crate) async fn change(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    gun: &Gun,
) -> Result<HttpResponse, ApiError> {
    state.auth.require(req, Action::Push, gun.as_str()).await?;
    let _upload = upload_permit(state)?;
    let settings = &state.settings;
    let result = match read_body(req, payload, settings, settings.max_body_bytes).await {
        Ok(body) => match parse_changes(&body, settings.max_json_depth) {
            Ok(changes) => apply(state, gun.as_str(), &changes).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    answer(state, gun, result)
}
