//! One function per subcommand, grouped by family; [`run`] picks it.
//! Each reads its arguments, calls the library and hands the result to
//! `render`.

mod consumer;
mod delegations;
mod export;
mod keys;
mod migrate;
mod mirror;
mod repository;
mod root;
mod tags;

use crate::args::{BinsCommand, Command, Output};
use crate::environment::{self, TerminalPassphrase};
use crate::render::{self, Printer};
use anyhow::{Context, Result};
use std::sync::Arc;
use tagtrust::home::{Config, Home};
use tagtrust::notices::Notices;
use tagtrust::publisher::Publisher;
use tagtrust::session::Session;

/// What every subcommand works with: the home and its config, the server
/// (if any), where notices go, where passphrases come from and how results
/// print.
pub struct Invocation {
    pub home: Home,
    pub config: Config,
    /// `--server`, `TAGTRUST_SERVER` or config; key commands need none.
    server: Option<String>,
    /// Library notices (skipped delegation branches, a max_age the server
    /// cannot meet, …), printed as they happen.
    pub notices: Notices,
    /// `TAGTRUST_PASSPHRASE`, else a prompt on the terminal.
    pub passphrases: Arc<TerminalPassphrase>,
    pub out: Printer,
}

impl Invocation {
    pub fn new(server: Option<String>, output: Output) -> Result<Invocation> {
        let home = environment::home()?;
        let config = home.config()?;
        let server = server.or(config.server.clone());
        Ok(Invocation {
            home,
            config,
            server,
            notices: Notices::with_sink(render::notice),
            passphrases: Arc::new(TerminalPassphrase),
            out: Printer(output),
        })
    }

    /// The server URL, for the commands that need one.
    pub fn server(&self) -> Result<String> {
        self.server
            .clone()
            .context("no server: give --server URL or set TAGTRUST_SERVER")
    }

    /// The session of this command against its server.
    pub fn session(&self) -> Result<Session> {
        Ok(environment::session(
            &self.home,
            self.server()?,
            &self.notices,
        ))
    }

    pub fn publisher(&self) -> Result<Publisher> {
        Ok(Publisher::new(self.session()?, self.passphrases.clone()))
    }
}

pub fn run(inv: &Invocation, command: Command) -> Result<()> {
    match command {
        Command::Init {
            gun,
            root_key,
            root_keys,
            root_threshold,
            bins,
            bin_form,
            bin_keys,
        } => {
            let bins = bins.map(|n| (n, bin_form.into(), bin_keys.into()));
            repository::init(inv, &gun, &root_key, root_keys, root_threshold, bins)
        }
        Command::Bins(BinsCommand::Enable {
            gun,
            bins,
            bin_form,
            bin_keys,
        }) => repository::enable_bins(inv, &gun, bins, bin_form.into(), bin_keys.into()),
        Command::Root(command) => root::run(inv, command),
        Command::Tag(command) => tags::run(inv, command),
        Command::List { gun } => consumer::list(inv, &gun),
        Command::Delegation(command) => delegations::run(inv, command),
        Command::Key(command) => keys::run(inv, command),
        Command::Status { gun, warning_days } => consumer::status(inv, &gun, warning_days),
        Command::History { reference } => consumer::history(inv, &reference),
        Command::Refresh { gun, role, key } => repository::refresh(inv, &gun, &role, key),
        Command::Mirror(command) => mirror::run(inv, command),
        Command::Migrate(command) => migrate::run(inv, command),
        Command::Export { guns, to } => export::export(inv, &guns, &to),
        Command::Lookup {
            reference,
            consumer,
        } => consumer::lookup(inv, &reference, consumer),
        Command::Pull {
            reference,
            registry,
            out,
            consumer,
        } => consumer::pull(inv, &reference, consumer, registry, out),
    }
}
