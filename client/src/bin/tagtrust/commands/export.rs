//! `tagtrust export GUN… --to DIR|FILE.tar`.

use super::Invocation;
use crate::environment;
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use tagtrust::export::{self, Destination};
use tagtrust::mirror::Upstream;
use tagtrust::terminal::escape;
use tagtrust_shared::Gun;

/// What `-o json` prints.
#[derive(Serialize)]
struct Summary {
    to: String,
    guns: Vec<GunLine>,
}

#[derive(Serialize)]
struct GunLine {
    gun: String,
    files: usize,
    bytes: u64,
    timestamp_version: u64,
}

pub fn export(inv: &Invocation, guns: &[Gun], to: &Path) -> Result<()> {
    let mut http = environment::http_options();
    if let Some(token) = environment::token() {
        http = http.with_bearer_token(&token);
    }
    let upstream = Upstream::new(&inv.server()?, http)?;
    let manifest = export::export(
        &upstream,
        guns,
        &Destination::for_path(to),
        chrono::Utc::now(),
        &mut |_| {},
    )?;
    let summary = Summary {
        to: to.display().to_string(),
        guns: manifest
            .guns
            .iter()
            .map(|g| GunLine {
                gun: g.gun.clone(),
                files: g.files.len(),
                bytes: g.files.iter().map(|f| f.length).sum(),
                timestamp_version: g.timestamp_version,
            })
            .collect(),
    };
    inv.out.print(&summary, || {
        let mut lines: Vec<String> = summary
            .guns
            .iter()
            .map(|g| {
                format!(
                    "exported {}: {} files, {} bytes, timestamp v{}",
                    escape(&g.gun),
                    g.files,
                    g.bytes,
                    g.timestamp_version
                )
            })
            .collect();
        lines.push(format!("wrote {}", escape(&summary.to)));
        lines.join("\n")
    })
}
