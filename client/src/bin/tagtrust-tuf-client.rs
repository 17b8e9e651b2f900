//! `tagtrust-tuf-client`: tagtrust's TUF verifier as a general TUF client,
//! speaking the command-line protocol TUF client test suites drive:
//!
//! ```text
//! tagtrust-tuf-client --metadata-dir MD init TRUSTED_ROOT_FILE
//! tagtrust-tuf-client --metadata-url URL --metadata-dir MD refresh
//! tagtrust-tuf-client --metadata-url URL --metadata-dir MD --target-name PATH \
//!     [--target-name PATH ...] --target-dir TD --target-base-url URL download
//! ```
//!
//! Exit status 0 on success and exactly 1 on any failure, argument errors
//! and panics included. Each call is a new process; all state is in MD.

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tagtrust::atomic_file::{read_optional, write_atomic};
use tagtrust::fetch::{HttpFetcher, HttpOptions};
use tagtrust::trusted::VerifiedRoot;
use tagtrust::updater::{Updater, UpdaterConfig};

#[derive(Debug, Parser)]
#[command(
    name = "tagtrust-tuf-client",
    version,
    about = "A TUF client (TUF specification 1.0.x, section 5) over tagtrust's verifier"
)]
struct Cli {
    /// Directory of the trusted metadata (the client's state).
    #[arg(long, value_name = "DIR")]
    metadata_dir: PathBuf,

    /// Base URL of the repository's metadata.
    #[arg(long, value_name = "URL")]
    metadata_url: Option<String>,

    /// Target path to download (repeatable).
    #[arg(long = "target-name", value_name = "PATH")]
    target_names: Vec<String>,

    /// Directory downloaded targets are written to.
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,

    /// Base URL of the repository's targets.
    #[arg(long, value_name = "URL")]
    target_base_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust TRUSTED_ROOT: copy it into the metadata directory (no network).
    Init {
        /// The root metadata file to trust.
        trusted_root: PathBuf,
    },
    /// Update the trusted metadata from the repository.
    Refresh,
    /// Refresh, then download each --target-name into --target-dir.
    Download,
}

fn updater(cli: &Cli) -> anyhow::Result<Updater<HttpFetcher>> {
    let url = cli
        .metadata_url
        .as_deref()
        .ok_or_else(|| anyhow!("--metadata-url is required"))?;
    let root_path = cli.metadata_dir.join("root.json");
    let root = read_optional(&root_path)?.ok_or_else(|| {
        anyhow!(
            "no trusted root at {} (initialise the client with a trusted root first)",
            root_path.display()
        )
    })?;
    let root = VerifiedRoot::from_bytes(&root)?;
    let fetcher = HttpFetcher::new(HttpOptions::default())?;
    Ok(Updater::new(
        &cli.metadata_dir,
        url,
        fetcher,
        UpdaterConfig::default(),
        root,
    ))
}

fn init(metadata_dir: &Path, trusted_root: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(trusted_root)
        .with_context(|| format!("reading {}", trusted_root.display()))?;
    // Only a root that is signed by its own threshold is worth starting
    // from; expiry is not checked here (a newer root may follow).
    VerifiedRoot::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable trusted root", trusted_root.display()))?;
    std::fs::create_dir_all(metadata_dir)
        .with_context(|| format!("creating {}", metadata_dir.display()))?;
    write_atomic(&metadata_dir.join("root.json"), &bytes)?;
    Ok(())
}

fn download(cli: &Cli) -> anyhow::Result<()> {
    let target_dir = cli
        .target_dir
        .as_deref()
        .ok_or_else(|| anyhow!("--target-dir is required for download"))?;
    let base = cli
        .target_base_url
        .as_deref()
        .ok_or_else(|| anyhow!("--target-base-url is required for download"))?;
    if cli.target_names.is_empty() {
        bail!("--target-name is required for download");
    }
    let mut updater = updater(cli)?;
    updater.refresh()?;
    for name in &cli.target_names {
        let info = updater
            .get_targetinfo(name)?
            .ok_or_else(|| anyhow!("target {name:?} is not in the trusted targets metadata"))?;
        updater.download_target(&info, target_dir, base)?;
    }
    Ok(())
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Init { trusted_root } => init(&cli.metadata_dir, trusted_root),
        Command::Refresh => Ok(updater(cli)?.refresh()?),
        Command::Download => download(cli),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let asked = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            return if asked {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
    };
    // A panic is a failure like any other: exit status 1, not 101.
    match std::panic::catch_unwind(|| run(&cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            let line = tagtrust::error_line::error_line(e.as_ref());
            eprintln!(
                "tagtrust-tuf-client: error: {}",
                tagtrust::terminal::escape(&line)
            );
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}
