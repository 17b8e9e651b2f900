//! `tagtrust`: sign and resolve container image tags with TUF.
//! Argument parsing and output only; the work is in the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use tagtrust::home::Home;
use tagtrust::lookup::{lookup, OpenOptions};
use tagtrust::publisher::{NewDelegation, Publisher, Signer, TagTarget, OCI_MANIFEST};
use tagtrust_shared::{Gun, ImageReference};

#[derive(Parser)]
#[command(
    name = "tagtrust",
    version,
    about = "Sign and resolve container image tags with TUF"
)]
struct Cli {
    /// tagtrust server URL [env: TAGTRUST_SERVER; else `server` in config.toml]
    #[arg(long, global = true, env = "TAGTRUST_SERVER", hide_env = true)]
    server: Option<String>,

    /// Output format
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    output: Output,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a signed repository for GUN: local root and targets keys, the
    /// server's timestamp and snapshot keys, root v1 and an empty targets v1.
    Init { gun: Gun },
    /// Add, move or remove signed tags.
    #[command(subcommand)]
    Tag(TagCommand),
    /// List the verified tags of GUN.
    List { gun: Gun },
    /// Delegate tags to other signers (CI robots, teams).
    #[command(subcommand)]
    Delegation(DelegationCommand),
    /// Manage local private keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Resolve GUN:TAG to a digest with every TUF check applied.
    Lookup {
        reference: String,
        /// Trust this root.json for a GUN seen for the first time (instead of
        /// a pin in config or trust on first use).
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DelegationCommand {
    /// Delegate tags matching --path to the given public keys.
    Add {
        gun: Gun,
        /// Name of the delegated role (no '/')
        name: String,
        /// Public key PEM file of a signer (repeat for several)
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// Tag pattern the role may sign, `*` and `?` per segment (repeatable)
        #[arg(long = "path", required = true)]
        paths: Vec<String>,
        /// Signatures required
        #[arg(long, default_value_t = 1)]
        threshold: u64,
        /// Stop the search at this role for tags it matches
        #[arg(long)]
        terminating: bool,
    },
    /// Remove a delegation.
    Rm { gun: Gun, name: String },
    /// List the delegations of GUN.
    List { gun: Gun },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Make a key pair (e.g. for a CI robot or delegated signer): the private
    /// key is stored encrypted, the public key printed as PEM.
    Generate {
        /// A name for the key (no '/')
        name: String,
        /// Write the encrypted private key here instead of the home
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the local private keys with their GUNs, roles and key IDs.
    List,
}

#[derive(Subcommand)]
enum TagCommand {
    /// Point GUN:TAG at a manifest digest, sign and publish.
    Set {
        reference: String,
        /// sha256:<64 hex> of the image manifest
        digest: String,
        /// Size of the manifest in bytes
        #[arg(long)]
        size: u64,
        /// Media type of the manifest
        #[arg(long, default_value = OCI_MANIFEST)]
        media_type: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Remove GUN:TAG, sign and publish.
    Rm {
        reference: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
}

/// Sign as a delegated role instead of top-level targets.
#[derive(clap::Args)]
struct SignerArgs {
    /// Delegated role to sign as (e.g. a CI robot's)
    #[arg(long, requires = "key")]
    role: Option<String>,
    /// Encrypted private key file of the delegated role
    #[arg(long, requires = "role")]
    key: Option<PathBuf>,
}

impl SignerArgs {
    fn signer(self) -> Signer {
        match (self.role, self.key) {
            (Some(role), Some(key_file)) => Signer::Delegated { role, key_file },
            _ => Signer::Targets,
        }
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "tagtrust: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cli) {
        // One line: the error and its causes.
        let line = format!("{e:#}").replace('\n', " ");
        eprintln!("tagtrust: error: {line}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let home = Home::from_env()?;
    let config = home.config()?;
    // Key commands work offline; everything else needs a server.
    let server = cli.server.clone().or(config.server.clone());
    let server = || {
        server
            .clone()
            .context("no server: give --server URL or set TAGTRUST_SERVER")
    };
    let token = std::env::var("TAGTRUST_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let publisher = || -> Result<Publisher> {
        Ok(Publisher {
            home: home.clone(),
            server: server()?,
            token: token.clone(),
        })
    };
    let out = Printer(cli.output);
    match cli.command {
        Command::Init { gun } => {
            let report = publisher()?.init(&gun)?;
            out.print(&report, || {
                format!(
                    "initialised {} (root key {}, targets key {})",
                    report.gun, report.root_key_id, report.targets_key_id
                )
            })
        }
        Command::Tag(TagCommand::Set {
            reference,
            digest,
            size,
            media_type,
            signer,
        }) => {
            let reference = ImageReference::parse(&reference)?;
            let target = TagTarget {
                digest,
                size,
                media_type,
            };
            let report = publisher()?.tag_set(&reference.gun, &reference.tag, &target, &signer.signer())?;
            out.print(&report, || {
                format!(
                    "{reference} -> {} (targets version {})",
                    target.digest, report.targets_version
                )
            })
        }
        Command::Tag(TagCommand::Rm { reference, signer }) => {
            let reference = ImageReference::parse(&reference)?;
            let report = publisher()?.tag_rm(&reference.gun, &reference.tag, &signer.signer())?;
            out.print(&report, || {
                format!(
                    "removed {reference} (targets version {})",
                    report.targets_version
                )
            })
        }
        Command::List { gun } => {
            let tags = publisher()?.list(&gun)?;
            out.print(&tags, || {
                tags.iter()
                    .map(|t| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            t.tag,
                            t.digest.as_deref().unwrap_or("-"),
                            t.size,
                            t.signed_by
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Delegation(DelegationCommand::Add {
            gun,
            name,
            keys,
            paths,
            threshold,
            terminating,
        }) => {
            let keys = keys
                .iter()
                .map(|path| {
                    let pem = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    tagtrust_shared::keys::ed25519_public_from_pem(&pem)
                        .with_context(|| format!("public key {}", path.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            let delegation = NewDelegation {
                name,
                keys,
                paths,
                threshold,
                terminating,
            };
            let report = publisher()?.delegation_add(&gun, &delegation)?;
            out.print(&report, || {
                format!(
                    "delegated {} of {gun} to {} (targets version {})",
                    delegation.paths.join(", "),
                    delegation.name,
                    report.targets_version
                )
            })
        }
        Command::Delegation(DelegationCommand::Rm { gun, name }) => {
            let report = publisher()?.delegation_rm(&gun, &name)?;
            out.print(&report, || {
                format!("removed delegation {name} of {gun} (targets version {})", report.targets_version)
            })
        }
        Command::Delegation(DelegationCommand::List { gun }) => {
            let list = publisher()?.delegation_list(&gun)?;
            out.print(&list, || {
                list.iter()
                    .map(|d| {
                        format!(
                            "{}\t{}\tthreshold {}\tkeys {}{}",
                            d.name,
                            d.paths.join(","),
                            d.threshold,
                            d.key_ids.join(","),
                            if d.terminating { "\tterminating" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Key(KeyCommand::Generate { name, out: file }) => {
            let key = tagtrust_shared::SigningKey::generate();
            let pass = tagtrust::home::passphrase("Passphrase for the new key: ")?;
            let path = match file {
                Some(path) => {
                    tagtrust::home::write_private_file(
                        &path,
                        key.to_encrypted_pem(&pass)?.as_bytes(),
                    )?;
                    path
                }
                None => home.save_named_key(&name, &key, &pass)?,
            };
            let public_pem = tagtrust_shared::keys::ed25519_public_to_pem(&key.public_key())?;
            let report = serde_json::json!({
                "name": name,
                "key_id": key.key_id(),
                "private_key_file": path,
                "public_key_pem": public_pem,
            });
            out.print(&report, || public_pem.trim_end().to_string())
        }
        Command::Key(KeyCommand::List) => {
            let keys = home.list_keys()?;
            out.print(&keys, || {
                keys.iter()
                    .map(|k| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            k.key_id,
                            k.role,
                            k.gun.as_deref().unwrap_or("-"),
                            k.path.display()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Lookup { reference, root } => {
            let reference = ImageReference::parse(&reference)?;
            let options = OpenOptions {
                root_file: root,
                token,
            };
            let (resolution, repo) = lookup(&home, &server()?, &reference, &options)?;
            if repo.trust == tagtrust::lookup::TrustSource::FirstUse {
                eprintln!(
                    "notice: trusting {} on first use: root keys {}",
                    reference.gun,
                    repo.new_root_keyids.join(", ")
                );
            }
            out.print(&resolution, || resolution.digest.clone())
        }
    }
}

/// Prints a result as text or JSON.
struct Printer(Output);

impl Printer {
    fn print<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        match self.0 {
            Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Output::Text => {
                let text = text();
                if !text.is_empty() {
                    println!("{text}");
                }
            }
        }
        Ok(())
    }
}
