use anyhow::Context;
use clap::Parser;
use tagtrust_server::configuration::{Cli, Command, Settings};
use tracing_subscriber::EnvFilter;

/// Logs go to stderr: stdout is reserved for command output (`token create`).
fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A failure is one line on stderr (the cause chain joined by `: `) and
/// exit status 1, whatever `RUST_BACKTRACE` says.
fn main() {
    if let Err(e) = run() {
        eprintln!("tagtrust-server: error: {e:#}");
        std::process::exit(1);
    }
}

#[actix_web::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = cli.overrides.settings().context("reading configuration")?;
    init_tracing(&settings);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => tagtrust_server::startup::run(settings).await,
        Command::Token(command) => tagtrust_server::tokens::run(&settings, command).await,
        Command::Import { source } => tagtrust_server::import::run(&settings, &source).await,
        Command::ImportNotary {
            from,
            all,
            auth_env,
            guns,
        } => {
            let authorization = match auth_env {
                Some(var) => Some(
                    std::env::var(&var).with_context(|| format!("reading ${var} (--auth-env)"))?,
                ),
                None => None,
            };
            let args = tagtrust_server::import_notary::ImportNotary {
                from,
                guns,
                all,
                authorization,
            };
            tagtrust_server::import_notary::run(&settings, args).await
        }
        Command::NotaryPending { output } => {
            tagtrust_server::import_notary::pending(&settings, output == "json").await
        }
    }
}
