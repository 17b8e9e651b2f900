//! `tagtrust`: sign and resolve container image tags with TUF.
//! Argument parsing and output only; the work is in the library.

#[path = "tagtrust/environment.rs"]
mod environment;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tagtrust::lookup::lookup;
use tagtrust::passphrase::PassphraseSource;
use tagtrust::publisher::{NewDelegation, Publisher, Signer, TagTarget, OCI_MANIFEST};
use tagtrust::registry;
use tagtrust::session::{OpenOptions, Session};
use tagtrust::terminal::{escape, escape_join, Escaped as E};
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
    /// Create a signed repository for GUN: root and targets keys, the
    /// server's timestamp and snapshot keys, root v1 and an empty targets v1.
    Init {
        gun: Gun,
        /// Public key PEM file of another root key holder, made by them with
        /// `tagtrust key generate` (repeatable; multi-party root)
        #[arg(long = "root-key", value_name = "PUB.pem")]
        root_key: Vec<PathBuf>,
        /// Root keys to generate on this machine (0: this machine holds none)
        #[arg(long, default_value_t = 1)]
        root_keys: usize,
        /// Root signatures required [default: 1 with a single root key];
        /// when the keys here cannot meet it, root v1 is staged until enough
        /// holders have run `root sign`
        #[arg(long)]
        root_threshold: Option<u64>,
    },
    /// Multi-party root: holders, threshold, and staged root changes.
    #[command(subcommand)]
    Root(RootCommand),
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
    /// Versions, signing times, expiries and key holders of every role, with
    /// warnings for roles expiring soon.
    Status {
        gun: Gun,
        /// Warn about roles expiring within this many days [config: expiry.warning_days]
        #[arg(long)]
        warning_days: Option<i64>,
    },
    /// Every change of GUN:TAG (digest, targets version, signer, time), verified.
    History { reference: String },
    /// Re-sign a role with a new expiry, content unchanged.
    Refresh {
        gun: Gun,
        /// root, targets (default) or a delegated role (with --key)
        #[arg(long, default_value = "targets")]
        role: String,
        /// Encrypted private key file, for a delegated role
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Resolve GUN:TAG to a digest with every TUF check applied.
    Lookup {
        reference: String,
        #[command(flatten)]
        consumer: ConsumerArgs,
    },
    /// Resolve GUN:TAG with TUF, fetch its manifest by the signed digest from
    /// the registry, check sha256 and size, then print or write it.
    Pull {
        reference: String,
        /// Registry base URL [env: TAGTRUST_REGISTRY; else the GUN's host]
        #[arg(long, value_name = "URL", env = "TAGTRUST_REGISTRY", hide_env = true)]
        registry: Option<String>,
        /// Write the manifest to FILE (atomically) instead of stdout
        #[arg(long = "out", short = 'O', value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        consumer: ConsumerArgs,
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
enum RootCommand {
    /// Add a root key holder's signature to the staged root change (needs
    /// only the staged file and the key; no server).
    Sign {
        gun: Gun,
        /// Encrypted private root key file
        #[arg(long)]
        key: PathBuf,
        /// Sign this staged-root file (handed over by another holder)
        /// instead of this home's staging area
        #[arg(long, value_name = "FILE")]
        staged: Option<PathBuf>,
    },
    /// Publish the staged root change once a threshold of the current
    /// root's root keys and of the new root's have signed it.
    Publish {
        gun: Gun,
        /// Publish this staged-root file instead of this home's staging area
        #[arg(long, value_name = "FILE")]
        staged: Option<PathBuf>,
    },
    /// What the staged root change does and whose signatures it still needs.
    Status {
        gun: Gun,
        /// Show this staged-root file instead of this home's staging area
        #[arg(long, value_name = "FILE")]
        staged: Option<PathBuf>,
    },
    /// Bring a staged-root file from another holder into this home,
    /// merging its signatures into the same change staged here.
    Import { file: PathBuf },
    /// Drop the root change staged in this home.
    Discard { gun: Gun },
    /// Add root key holders (their public keys) in a new root.
    AddKey {
        gun: Gun,
        /// Public key PEM file of the new holder (repeatable)
        #[arg(long = "key", value_name = "PUB.pem", required = true)]
        keys: Vec<PathBuf>,
        /// New root threshold [default: unchanged]
        #[arg(long)]
        threshold: Option<u64>,
    },
    /// Remove root key holders in a new root.
    RemoveKey {
        gun: Gun,
        /// Key ID (or a unique prefix) of a root key to remove
        #[arg(required = true)]
        key_ids: Vec<String>,
        /// New root threshold [default: unchanged]
        #[arg(long)]
        threshold: Option<u64>,
    },
    /// Change how many root keys must sign, in a new root.
    SetThreshold { gun: Gun, threshold: u64 },
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
    /// Copy a private key (still encrypted) out of the home, e.g. for
    /// another root key holder.
    Export {
        /// Key ID (or a unique prefix of it)
        key_id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Bring an encrypted private key file into the home (checked with the passphrase).
    Import {
        file: PathBuf,
        /// GUN the key belongs to (with --role); without it the key is stored by --role as a name
        #[arg(long)]
        gun: Option<Gun>,
        /// Role (root, targets) or a name for the key
        #[arg(long)]
        role: String,
    },
    /// Replace the key of root, targets, snapshot or timestamp and publish
    /// a new root listing it (snapshot and timestamp keys are made by the server).
    Rotate {
        gun: Gun,
        #[arg(value_parser = ["root", "targets", "snapshot", "timestamp"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum TagCommand {
    /// Point GUN:TAG at a manifest digest, sign and publish.
    Set {
        reference: String,
        /// sha256:<64 hex> of the image manifest
        #[arg(
            required_unless_present = "from_registry",
            conflicts_with = "from_registry"
        )]
        digest: Option<String>,
        /// Size of the manifest in bytes
        #[arg(
            long,
            required_unless_present = "from_registry",
            conflicts_with = "from_registry"
        )]
        size: Option<u64>,
        /// Media type of the manifest [default: OCI image manifest]
        #[arg(long, conflicts_with = "from_registry")]
        media_type: Option<String>,
        /// Take digest, size, media type and annotations from what the tag
        /// points to in this registry now (e.g. http://127.0.0.1:5000)
        #[arg(long, value_name = "URL")]
        from_registry: Option<String>,
        /// OCI annotation to sign with the target (repeatable)
        #[arg(long = "annotation", value_name = "KEY=VALUE")]
        annotations: Vec<String>,
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

/// How a consumer establishes and checks trust.
#[derive(clap::Args)]
struct ConsumerArgs {
    /// Trust this root.json for a GUN seen for the first time (instead of
    /// a pin in config or trust on first use).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Use only the local trusted metadata; fetch nothing.
    #[arg(long)]
    offline: bool,
    /// With --offline: accept metadata that expired at most this long ago (e.g. 2h)
    #[arg(long, value_parser = humantime::parse_duration, requires = "offline")]
    max_stale: Option<std::time::Duration>,
    /// Refuse a timestamp signed longer ago than this, even if unexpired
    /// (e.g. 1h) [config: freshness.max_age]
    #[arg(long, value_parser = humantime::parse_duration)]
    max_age: Option<std::time::Duration>,
}

impl ConsumerArgs {
    fn options(self, config: &tagtrust::home::Config) -> Result<OpenOptions> {
        Ok(OpenOptions {
            root_file: self.root,
            offline: self.offline,
            max_stale: self.max_stale,
            max_age: match self.max_age {
                Some(age) => Some(age),
                None => config.freshness.max_age()?,
            },
        })
    }
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
        // Causes can carry a server's words: escape them (a message
        // could otherwise rewrite the terminal).
        let line = tagtrust::error_line::error_line(e.as_ref());
        eprintln!("tagtrust: error: {}", escape(&line));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let home = environment::home()?;
    let config = home.config()?;
    // Key commands work offline; everything else needs a server.
    let server = cli.server.clone().or(config.server.clone());
    let server = || {
        server
            .clone()
            .context("no server: give --server URL or set TAGTRUST_SERVER")
    };
    let notices = environment::notices();
    let session = || -> Result<Session> { Ok(environment::session(&home, server()?, &notices)) };
    let publisher = || -> Result<Publisher> {
        Ok(Publisher::new(
            session()?,
            Arc::new(environment::TerminalPassphrase),
        ))
    };
    let out = Printer(cli.output);
    match cli.command {
        Command::Init {
            gun,
            root_key,
            root_keys,
            root_threshold,
        } => {
            let holders = public_keys(&root_key)?;
            let report = publisher()?.init(&gun, root_keys, &holders, root_threshold)?;
            out.print(&report, || {
                if report.root_signing.published {
                    format!(
                        "initialised {} (root keys {}, threshold {}; targets key {})",
                        report.gun,
                        escape_join(&report.root_key_ids, ", "),
                        report.root_threshold,
                        E(&report.targets_key_id)
                    )
                } else {
                    root_signing_line(&report.root_signing)
                }
            })
        }
        Command::Root(RootCommand::Sign { gun, key, staged }) => {
            let report = match server() {
                Ok(_) => publisher()?.root_sign(&gun, &key, staged.as_deref())?,
                // No server: only a staged file can be signed.
                Err(e) => {
                    let file = staged.context(e)?;
                    tagtrust::staging::sign_staged(
                        &tagtrust::staging::Staging::at(file),
                        &gun,
                        &key,
                        None,
                        &environment::TerminalPassphrase,
                    )?
                }
            };
            out.print(&report, || root_signing_line(&report))
        }
        Command::Root(RootCommand::Publish { gun, staged }) => {
            let report = publisher()?.root_publish(&gun, staged.as_deref())?;
            out.print(&report, || root_signing_line(&report))
        }
        Command::Root(RootCommand::Status { gun, staged }) => {
            let report = match server() {
                Ok(_) => publisher()?.root_status(&gun, staged.as_deref())?,
                Err(e) => tagtrust::staging::staged_standing(
                    &tagtrust::staging::Staging::at(staged.context(e)?),
                    &gun,
                    None,
                )?,
            };
            out.print(&report, || root_signing_line(&report))
        }
        Command::Root(RootCommand::Import { file }) => {
            let report = publisher()?.root_import(&file)?;
            out.print(&report, || root_signing_line(&report))
        }
        Command::Root(RootCommand::Discard { gun }) => {
            let staged = publisher()?.root_discard(&gun)?;
            out.print(&staged, || {
                format!(
                    "dropped the staged root change of {gun} ({})",
                    staged.change
                )
            })
        }
        Command::Root(RootCommand::AddKey {
            gun,
            keys,
            threshold,
        }) => {
            let change = tagtrust::rotation::RootKeyChange {
                add: public_keys(&keys)?,
                remove: Vec::new(),
                threshold,
            };
            let report = publisher()?.change_root_keys(&gun, &change)?;
            out.print(&report, || role_report_line(&report))
        }
        Command::Root(RootCommand::RemoveKey {
            gun,
            key_ids,
            threshold,
        }) => {
            let change = tagtrust::rotation::RootKeyChange {
                add: Vec::new(),
                remove: key_ids,
                threshold,
            };
            let report = publisher()?.change_root_keys(&gun, &change)?;
            out.print(&report, || role_report_line(&report))
        }
        Command::Root(RootCommand::SetThreshold { gun, threshold }) => {
            let change = tagtrust::rotation::RootKeyChange {
                threshold: Some(threshold),
                ..Default::default()
            };
            let report = publisher()?.change_root_keys(&gun, &change)?;
            out.print(&report, || role_report_line(&report))
        }
        Command::Tag(TagCommand::Set {
            reference,
            digest,
            size,
            media_type,
            from_registry,
            annotations,
            signer,
        }) => {
            let reference = ImageReference::parse(&reference)?;
            let target = tag_target(
                &reference,
                digest.zip(size),
                media_type,
                from_registry.as_deref(),
                &annotations,
                &config.registry,
            )?;
            let report =
                publisher()?.tag_set(&reference.gun, &reference.tag, &target, &signer.signer())?;
            announce_resigned(&report.resigned);
            out.print(&report, || {
                format!(
                    "{reference} -> {} (targets version {})",
                    E(&target.digest),
                    report.targets_version
                )
            })
        }
        Command::Tag(TagCommand::Rm { reference, signer }) => {
            let reference = ImageReference::parse(&reference)?;
            let report = publisher()?.tag_rm(&reference.gun, &reference.tag, &signer.signer())?;
            announce_resigned(&report.resigned);
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
                            E(&t.tag),
                            E(t.digest.as_deref().unwrap_or("-")),
                            t.size,
                            E(&t.signed_by)
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
            let keys = public_keys(&keys)?;
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
                    "{} {} of {gun} to {} (targets version {})",
                    if report.replaced {
                        "replaced the delegation: delegated"
                    } else {
                        "delegated"
                    },
                    escape_join(&delegation.paths, ", "),
                    E(&delegation.name),
                    report.targets_version
                )
            })
        }
        Command::Delegation(DelegationCommand::Rm { gun, name }) => {
            let report = publisher()?.delegation_rm(&gun, &name)?;
            out.print(&report, || {
                format!(
                    "removed delegation {} of {gun} (targets version {})",
                    E(&name),
                    report.targets_version
                )
            })
        }
        Command::Delegation(DelegationCommand::List { gun }) => {
            let list = publisher()?.delegation_list(&gun)?;
            out.print(&list, || {
                list.iter()
                    .map(|d| {
                        format!(
                            "{}\t{}\tthreshold {}\tkeys {}{}",
                            E(&d.name),
                            escape_join(&d.paths, ","),
                            d.threshold,
                            escape_join(&d.key_ids, ","),
                            if d.terminating { "\tterminating" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Key(KeyCommand::Generate { name, out: file }) => {
            let key = tagtrust_shared::SigningKey::generate();
            let pass =
                environment::TerminalPassphrase.passphrase("Passphrase for the new key: ")?;
            let path = match file {
                Some(path) => {
                    tagtrust::atomic_file::write_private_file(
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
        Command::Key(KeyCommand::Rotate { gun, role }) => {
            let report = publisher()?.rotate_key(&gun, &role)?;
            out.print(&report, || {
                format!(
                    "new {role} key of {gun}: {}\n{}",
                    E(report.new_key_id.as_deref().unwrap_or("-")),
                    role_report_line(&report)
                )
            })
        }
        Command::Status { gun, warning_days } => {
            let days = warning_days.unwrap_or(config.expiry.warning_days);
            let report = tagtrust::status::status(&session()?, &gun, days)?;
            for warning in &report.warnings {
                eprintln!("warning: {}", escape(warning));
            }
            out.print(&report, || {
                report
                    .roles
                    .iter()
                    .map(|r| {
                        format!(
                            "{:<12} v{:<5} signed {:<20} expires {} ({}h left)  key: {}",
                            E(&r.role).to_string(),
                            r.version,
                            r.signed_at
                                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                                .unwrap_or_else(|| "-".into()),
                            r.expires.format("%Y-%m-%d %H:%M:%S"),
                            r.seconds_left / 3600,
                            E(&r.key_holder)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::History { reference } => {
            let reference = ImageReference::parse(&reference)?;
            let history = tagtrust::history::history(&session()?, &reference)?;
            out.print(&history, || {
                history
                    .entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} v{}\t{}\t{}\tsigned by {}",
                            E(&e.role),
                            e.version,
                            E(e.digest.as_deref().unwrap_or("(removed)")),
                            e.signed_at
                                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                                .unwrap_or_else(|| "-".into()),
                            escape_join(&e.signed_by, ",")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Refresh { gun, role, key } => {
            let signer = match (role.as_str(), key) {
                ("root" | "targets" | "snapshot" | "timestamp", _) => Signer::Targets,
                (_, Some(key_file)) => Signer::Delegated {
                    role: role.clone(),
                    key_file,
                },
                (_, None) => anyhow::bail!("refreshing delegated role {role} needs --key KEYFILE"),
            };
            let report = publisher()?.refresh_role(&gun, &signer, &role)?;
            out.print(&report, || match &report.root_signing {
                Some(_) => role_report_line(&report),
                None => format!(
                    "re-signed {} of {gun} (version {})",
                    E(&role),
                    report.version.unwrap_or_default()
                ),
            })
        }
        Command::Key(KeyCommand::Export { key_id, out: file }) => {
            let keys = home.list_keys()?;
            let matching: Vec<_> = keys
                .iter()
                .filter(|k| k.key_id.starts_with(&key_id))
                .collect();
            let key = match matching.as_slice() {
                [key] => *key,
                [] => anyhow::bail!("no local key with ID {key_id}"),
                _ => anyhow::bail!(
                    "key ID prefix {key_id} matches {} keys; give more of it",
                    matching.len()
                ),
            };
            let pem = std::fs::read(&key.path)
                .with_context(|| format!("reading {}", key.path.display()))?;
            tagtrust::atomic_file::write_private_file(&file, &pem)?;
            let report = serde_json::json!({ "key_id": key.key_id, "file": file });
            out.print(&report, || {
                format!(
                    "exported key {} (encrypted) to {}",
                    E(&key.key_id),
                    file.display()
                )
            })
        }
        Command::Key(KeyCommand::Import { file, gun, role }) => {
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let pass = environment::TerminalPassphrase
                .passphrase(&format!("Passphrase for {}: ", file.display()))?;
            let (key_id, path) = home.import_key(&pem, &pass, gun.as_ref(), &role)?;
            let report = serde_json::json!({ "key_id": key_id, "file": path });
            out.print(&report, || {
                format!("imported key {} as {}", E(&key_id), path.display())
            })
        }
        Command::Key(KeyCommand::List) => {
            let keys = home.list_keys()?;
            out.print(&keys, || {
                keys.iter()
                    .map(|k| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            E(&k.key_id),
                            E(&k.role),
                            E(k.gun.as_deref().unwrap_or("-")),
                            E(&k.path.display().to_string())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Lookup {
            reference,
            consumer,
        } => {
            let reference = ImageReference::parse(&reference)?;
            let options = consumer.options(&config)?;
            if options.offline {
                eprintln!(
                    "notice: offline: using only the local trusted metadata of {}",
                    reference.gun
                );
            }
            let (resolution, _repo) = lookup(&session()?, &reference, &options)?;
            out.print(&resolution, || escape(&resolution.digest).into_owned())
        }
        Command::Pull {
            reference,
            registry,
            out: file,
            consumer,
        } => {
            let options = consumer.options(&config)?;
            pull(&session()?, &reference, &options, registry, file, &out)
        }
    }
}

/// What `tag set` signs: the given digest and size, or what the tag points
/// to in the registry now; `--annotation`s are added to (and override) the
/// registry's.
fn tag_target(
    reference: &ImageReference,
    digest_size: Option<(String, u64)>,
    media_type: Option<String>,
    from_registry: Option<&str>,
    annotations: &[String],
    registry_config: &tagtrust::home::RegistryConfig,
) -> Result<TagTarget> {
    let mut target = match (from_registry, digest_size) {
        (Some(url), _) => {
            let location = registry::locate(&reference.gun, Some(url))?;
            let descriptor = registry::RegistryClient::for_location(
                &location,
                registry_config,
                environment::registry_credentials(),
                &environment::http_options(),
            )?
            .describe(&location.name, &reference.tag)
            .with_context(|| format!("reading {} from {}", reference, location.base))?;
            TagTarget {
                digest: descriptor.digest,
                size: descriptor.size,
                media_type: descriptor.media_type,
                annotations: descriptor.annotations,
            }
        }
        (None, Some((digest, size))) => TagTarget {
            digest,
            size,
            media_type: media_type.unwrap_or_else(|| OCI_MANIFEST.to_string()),
            annotations: Default::default(),
        },
        (None, None) => anyhow::bail!("give DIGEST and --size, or --from-registry URL"),
    };
    for annotation in annotations {
        let (key, value) = annotation
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("--annotation {annotation:?} is not KEY=VALUE"))?;
        target
            .annotations
            .insert(key.to_string(), value.to_string());
    }
    Ok(target)
}

/// `pull`: verified manifest to FILE or stdout.
fn pull(
    session: &Session,
    reference: &str,
    options: &OpenOptions,
    registry: Option<String>,
    file: Option<PathBuf>,
    out: &Printer,
) -> Result<()> {
    let reference = ImageReference::parse(reference)?;
    if options.offline {
        eprintln!(
            "notice: offline: using only the local trusted metadata of {}",
            reference.gun
        );
    }
    let (pulled, _repo) = registry::pull(
        session,
        &reference,
        options,
        registry.as_deref(),
        environment::registry_credentials(),
    )?;
    if let Some(path) = &file {
        tagtrust::atomic_file::write_file_atomically(path, &pulled.manifest)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let r = &pulled.resolution;
    let mut report = serde_json::json!({
        "gun": r.gun,
        "tag": r.tag,
        "digest": r.digest,
        "size": r.size,
        "media_type": r.media_type,
        "annotations": pulled.annotations,
        "signed_by": r.signed_by,
        "registry": pulled.location.base,
        "repository": pulled.location.name,
        "written_to": file,
    });
    if file.is_none() {
        report["manifest"] = serde_json::from_slice(&pulled.manifest)
            .unwrap_or_else(|_| String::from_utf8_lossy(&pulled.manifest).into());
    }
    match (&file, out.0) {
        (None, Output::Text) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&pulled.manifest)?;
            stdout.flush()?;
            Ok(())
        }
        (Some(path), _) => out.print(&report, || {
            format!(
                "{reference} -> {} ({} bytes) written to {}",
                E(&r.digest),
                r.size,
                path.display()
            )
        }),
        (None, Output::Json) => out.print(&report, String::new),
    }
}

/// Where a root change stands, in words: published, or staged with what
/// it still needs and from whom.
fn root_signing_line(r: &tagtrust::staging::RootSigning) -> String {
    let old = r
        .old_root
        .as_ref()
        .map(|t| {
            format!(
                ", old root v{} {} of {}",
                t.root_version,
                t.signed_by.len(),
                t.threshold
            )
        })
        .unwrap_or_default();
    let counts = format!(
        "new root {} of {}{old}",
        r.new_root.signed_by.len(),
        r.new_root.threshold
    );
    if r.published {
        return format!(
            "published root v{} of {} ({}; {counts})",
            r.version,
            r.gun,
            E(&r.change)
        );
    }
    // A staged file travels between holders: its words are escaped too.
    let mut lines = vec![format!(
        "root v{} of {}: {}",
        r.version,
        r.gun,
        E(&r.change)
    )];
    lines.extend(r.differences.iter().map(|d| format!("  {}", E(d))));
    if let Some(file) = &r.staged_file {
        lines.push(format!("  staged in {}", file.display()));
    }
    if !r.previous_root_checked && r.old_root.is_some() {
        lines.push(
            "  note: the root it replaces is as the staged file says; this home could not check it against a root it trusts"
                .into(),
        );
    }
    if r.needed == 0 {
        lines.push(format!(
            "ready ({counts}): run `tagtrust root publish {}`",
            r.gun
        ));
    } else {
        lines.push(format!(
            "{}; run `tagtrust root sign {} --key FILE` on each holder's machine",
            E(&r.missing()),
            r.gun
        ));
    }
    lines.join("\n")
}

/// A rotation, refresh or holder change, in words.
fn role_report_line(r: &tagtrust::rotation::RoleReport) -> String {
    match &r.root_signing {
        Some(signing) => root_signing_line(signing),
        None => format!("root version {}", r.root_version),
    }
}

/// Read ed25519 public key PEM files.
fn public_keys(paths: &[PathBuf]) -> Result<Vec<tagtrust_shared::PublicKey>> {
    paths
        .iter()
        .map(|path| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            tagtrust_shared::keys::ed25519_public_from_pem(&pem)
                .with_context(|| format!("public key {}", path.display()))
        })
        .collect()
}

/// Say which roles a publish re-signed because they were about to expire.
fn announce_resigned(roles: &[String]) {
    if !roles.is_empty() {
        eprintln!(
            "notice: also re-signed {} (expiring within the warning window)",
            roles.join(" and ")
        );
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
