//! The `token` subcommands: create (print once, store the hash), list, revoke.

use crate::auth::{generate_token, hash_token, validate_scope};
use crate::configuration::{Settings, TokenCommand};
use crate::storage::Storage;
use std::io::Write;

/// Run one `token` subcommand against the database `settings` name.
pub async fn run(settings: &Settings, command: TokenCommand) -> anyhow::Result<()> {
    let storage = Storage::connect(settings).await?;
    match command {
        TokenCommand::Create { scopes, name } => {
            for scope in &scopes {
                validate_scope(scope).map_err(anyhow::Error::msg)?;
            }
            let token = generate_token();
            let id = hex::encode(rand::random::<[u8; 8]>());
            storage
                .insert_token(&id, &name, &hash_token(&token), &scopes)
                .await?;
            tracing::info!(token_id = %id, scopes = ?scopes, "created token");
            // Only the token on stdout, so scripts can capture it.
            writeln!(std::io::stdout(), "{token}")?;
        }
        TokenCommand::List => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")?;
            for t in storage.list_tokens().await? {
                let time = |secs: i64| {
                    chrono::DateTime::from_timestamp(secs, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default()
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    t.scopes.join(","),
                    time(t.created_at),
                    t.revoked_at.map(time).unwrap_or_else(|| "-".into())
                )?;
            }
        }
        TokenCommand::Revoke { id } => {
            if !storage.revoke_token(&id).await? {
                anyhow::bail!("no live token with ID {id}");
            }
            writeln!(std::io::stdout(), "revoked {id}")?;
        }
    }
    Ok(())
}
