//! Storing an import: read what the server holds of the GUN under its
//! lock, plan with the pure core ([`super::plan_import`]), insert the new
//! files byte for byte, mark the GUN mirrored and commit, all in one
//! transaction. A refusal (or any error) drops the transaction, so nothing
//! of the GUN is stored. `POST /_trust/mirror` and `tagtrust-server import`
//! both come through here.

use super::{plan_import, Held, ImportPlan, ImportRefusal, Offered};
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, Utc};
use tagtrust_shared::{Gun, TopLevelRole};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Refused(#[from] ImportRefusal),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Verify `offered` against what is held of `gun` and store what is new.
pub async fn store_import(
    storage: &Storage,
    gun: &Gun,
    offered: Vec<Offered>,
    now: DateTime<Utc>,
) -> Result<ImportPlan, StoreError> {
    let mut repo = storage.lock(gun.as_str()).await?;
    let versions = repo.stored_versions().await?;
    let hosted = repo.has_keys().await? || (!versions.is_empty() && !repo.is_mirrored());
    let root = TopLevelRole::Root.as_str();
    let mut files = repo.all_versions(root).await?;
    files.extend(
        repo.current_files()
            .await?
            .into_iter()
            .filter(|f| f.role != root),
    );
    let held = Held::new(
        hosted,
        versions,
        files
            .into_iter()
            .map(|f| (f.role, f.version, f.bytes.to_vec())),
    );
    let plan = plan_import(&held, offered, now)?;
    for file in &plan.store {
        repo.insert_metadata(&file.role, file.version, &file.bytes)
            .await?;
    }
    if !plan.store.is_empty() {
        repo.mark_mirrored().await?;
        repo.commit().await?;
    }
    Ok(plan)
}
