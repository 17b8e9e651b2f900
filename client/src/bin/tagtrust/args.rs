//! The command line: every subcommand, argument and flag, as clap reads
//! them. Nothing here does work; `commands` does.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tagtrust_shared::Gun;

#[derive(Parser)]
#[command(
    name = "tagtrust",
    version,
    about = "Sign and resolve container image tags with TUF"
)]
pub struct Cli {
    /// tagtrust server URL [env: TAGTRUST_SERVER; else `server` in config.toml]
    #[arg(long, global = true, env = "TAGTRUST_SERVER", hide_env = true)]
    pub server: Option<String>,

    /// Output format
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Delegate every tag to N hashed bins (a power of two up to 1024),
        /// as `bins enable` does
        #[arg(long, value_name = "N")]
        bins: Option<u64>,
        /// How targets delegates to the bins (with --bins)
        #[arg(long, value_enum, default_value_t = BinFormArg::Succinct, requires = "bins")]
        bin_form: BinFormArg,
        /// Who holds the bin key (with --bins)
        #[arg(long, value_enum, default_value_t = BinKeysArg::Local, requires = "bins")]
        bin_keys: BinKeysArg,
    },
    /// Hashed-bin delegations for large tag sets.
    #[command(subcommand)]
    Bins(BinsCommand),
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
        /// root, targets (default) or a delegated role
        #[arg(long, default_value = "targets")]
        role: String,
        /// Encrypted private key file, for a delegated role [default: the
        /// home's one key of the role: of the GUN, or stored under its name]
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Resolve GUN:TAG to a digest with every TUF check applied.
    Lookup {
        reference: String,
        #[command(flatten)]
        consumer: ConsumerArgs,
    },
    /// Copy signed metadata between servers (transparent mirrors).
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// Move a repository of another system to spec TUF.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Write every stored version of each GUN's signed metadata, byte for
    /// byte as the server serves it, as a static TUF layout (consistent
    /// snapshot names and the current files, under v2/{gun}/_trust/tuf/)
    /// with a manifest (tagtrust-export.json): a web root any static server
    /// serves, or a tar of it. Reads with TAGTRUST_TOKEN if set; no key is
    /// read or written.
    Export {
        #[arg(required = true)]
        guns: Vec<Gun>,
        /// Directory to write (a web root), or FILE.tar
        #[arg(long, value_name = "DIR|FILE.tar")]
        to: PathBuf,
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
pub enum MigrateCommand {
    /// Verify the Notary v1 repository GUN on --from as a Notary client does
    /// (from the trust directory's cached root), then publish its tags,
    /// digests, sizes and delegations as the spec-TUF repository --to on
    /// --server, signed with the publisher's own Notary root and targets
    /// keys from --trust-dir (passphrases from NOTARY_ROOT_PASSPHRASE,
    /// NOTARY_TARGETS_PASSPHRASE, NOTARY_DELEGATION_PASSPHRASE, else a
    /// prompt), which are then stored in this home for --to, re-encrypted
    /// under TAGTRUST_PASSPHRASE (else a prompt). Needs a push: token for
    /// --to (TAGTRUST_TOKEN).
    Notary {
        gun: Gun,
        /// The Notary trust directory (`~/.docker/trust`, `notary -d DIR`)
        #[arg(long, value_name = "DIR")]
        trust_dir: PathBuf,
        /// Server the Notary repository lives on [default: --server]
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The spec-TUF GUN to create [default: GUN; then --from must be
        /// another server: a GUN's dialect is fixed by its first publish]
        #[arg(long, value_name = "GUN")]
        to: Option<Gun>,
    },
}

#[derive(Subcommand)]
pub enum MirrorCommand {
    /// Copy every stored version of each GUN from --from to --to byte for
    /// byte (the destination verifies it and re-signs nothing). The
    /// destination needs an admin: token (TAGTRUST_TOKEN); the upstream is
    /// read with TAGTRUST_UPSTREAM_TOKEN if set.
    Sync {
        /// Upstream tagtrust server URL
        #[arg(long, value_name = "URL")]
        from: String,
        /// Destination (mirror) tagtrust server URL
        #[arg(long, value_name = "URL")]
        to: String,
        /// GUNs to copy
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        guns: Vec<Gun>,
        /// Every GUN the upstream's changefeed names (needs an upstream token)
        #[arg(long)]
        all: bool,
        /// Keep polling the upstream's changefeed and copy what changes
        #[arg(long)]
        follow: bool,
        /// Seconds between changefeed polls with --follow
        #[arg(long, default_value_t = 5, value_name = "SECS")]
        interval: u64,
    },
    /// Re-rooted mirror: verify GUN on --from (as a consumer would), then
    /// delegate the tags of your own repository --as DEST_GUN on --to to
    /// the upstream's targets keys and store the upstream's signed targets
    /// (and its delegated roles) verbatim as that delegated role. Signed
    /// with your targets key for DEST_GUN (create it with `tagtrust init`).
    Import {
        /// Upstream tagtrust server URL
        #[arg(long, value_name = "URL")]
        from: String,
        /// The mirror's tagtrust server URL (your repository's server)
        #[arg(long, value_name = "URL")]
        to: String,
        /// The upstream GUN
        gun: Gun,
        /// Your repository on the mirror
        #[arg(long = "as", value_name = "DEST_GUN")]
        dest: Gun,
        /// The delegated role the upstream's targets becomes
        #[arg(long, default_value = "upstream")]
        role: String,
        /// Tag patterns the upstream may sign in your repository (repeatable)
        #[arg(long = "path", default_values_t = vec!["*".to_string()])]
        paths: Vec<String>,
        /// Trust the upstream's first root from this file (else a pin in
        /// config.toml, else trust on first use, announced)
        #[arg(long, value_name = "FILE")]
        upstream_root: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum DelegationCommand {
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
pub enum RootCommand {
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
pub enum KeyCommand {
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
    /// Bring an encrypted private key file into the home (checked with the
    /// passphrase): tagtrust's own, or a Notary trust directory's
    /// `private/<keyid>.key` (ECDSA P-256; opened with its Notary passphrase,
    /// NOTARY_DELEGATION_PASSPHRASE etc. or a prompt, and stored re-encrypted
    /// under TAGTRUST_PASSPHRASE).
    Import {
        file: PathBuf,
        /// GUN the key belongs to (with --role); without it the key is stored by --role as a name
        #[arg(long)]
        gun: Option<Gun>,
        /// Role (root, targets) or a name for the key [default for a Notary
        /// key file: its role, `targets/ci` as `ci`]
        #[arg(long)]
        role: Option<String>,
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
pub enum BinsCommand {
    /// Re-bin GUN into N hashed bins in one publish (every tag kept): the
    /// targets role then delegates each tag to a bin by the hash of its name.
    Enable {
        gun: Gun,
        /// How many bins (a power of two, 2 to 1024)
        #[arg(long, value_name = "N")]
        bins: u64,
        /// How targets delegates to the bins
        #[arg(long, value_enum, default_value_t = BinFormArg::Succinct)]
        bin_form: BinFormArg,
        /// Who holds the bin key
        #[arg(long, value_enum, default_value_t = BinKeysArg::Local)]
        bin_keys: BinKeysArg,
    },
}

/// `--bin-keys`: where the bin key lives, and so who signs tag changes.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BinKeysArg {
    /// This home: every tag change is signed here with the bin key
    Local,
    /// The server, as an online key: it signs the bins, and a push: token
    /// is what authorises a tag change (see SECURITY.md)
    Server,
}

impl From<BinKeysArg> for tagtrust::bins::BinKeys {
    fn from(arg: BinKeysArg) -> Self {
        match arg {
            BinKeysArg::Local => Self::Local,
            BinKeysArg::Server => Self::Server,
        }
    }
}

/// `--bin-form`: which clients must read the repository decides it.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BinFormArg {
    /// TAP 15 succinct_roles: one small delegation (python-tuf, go-tuf,
    /// RSTUF, tagtrust)
    Succinct,
    /// One delegated role per bin with path_hash_prefixes (spec 1.0; tough
    /// reads only this form)
    PathHashPrefixes,
}

impl From<BinFormArg> for tagtrust::bins::BinForm {
    fn from(arg: BinFormArg) -> Self {
        match arg {
            BinFormArg::Succinct => Self::Succinct,
            BinFormArg::PathHashPrefixes => Self::PathHashPrefixes,
        }
    }
}

#[derive(Subcommand)]
pub enum TagCommand {
    /// Point GUN:TAG at a manifest digest, sign and publish (or many tags
    /// of GUN at once with --from-file).
    Set {
        /// GUN:TAG (GUN with --from-file)
        reference: String,
        /// sha256:<64 hex> of the image manifest
        #[arg(
            required_unless_present_any = ["from_registry", "from_file"],
            conflicts_with_all = ["from_registry", "from_file"]
        )]
        digest: Option<String>,
        /// Size of the manifest in bytes
        #[arg(
            long,
            required_unless_present_any = ["from_registry", "from_file"],
            conflicts_with_all = ["from_registry", "from_file"]
        )]
        size: Option<u64>,
        /// Media type of the manifest [default: OCI image manifest]
        #[arg(long, conflicts_with_all = ["from_registry", "from_file"])]
        media_type: Option<String>,
        /// Take digest, size, media type and annotations from what the tag
        /// points to in this registry now (e.g. http://127.0.0.1:5000)
        #[arg(long, value_name = "URL", conflicts_with = "from_file")]
        from_registry: Option<String>,
        /// Set every tag of this list in one signed publish: one
        /// `TAG sha256:HEX SIZE [MEDIA_TYPE]` per line (`-`: standard input)
        #[arg(long, value_name = "FILE")]
        from_file: Option<std::path::PathBuf>,
        /// OCI annotation to sign with the target (repeatable)
        #[arg(
            long = "annotation",
            value_name = "KEY=VALUE",
            conflicts_with = "from_file"
        )]
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
pub struct ConsumerArgs {
    /// Trust this root.json for a GUN seen for the first time (instead of
    /// a pin in config or trust on first use).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Use only the local trusted metadata; fetch nothing.
    #[arg(long)]
    pub offline: bool,
    /// With --offline: accept metadata that expired at most this long ago (e.g. 2h)
    #[arg(long, value_parser = humantime::parse_duration, requires = "offline")]
    pub max_stale: Option<std::time::Duration>,
    /// Refuse a timestamp signed longer ago than this, even if unexpired
    /// (e.g. 1h) [config: freshness.max_age]
    #[arg(long, value_parser = humantime::parse_duration)]
    pub max_age: Option<std::time::Duration>,
}

/// Sign as a delegated role instead of top-level targets.
#[derive(clap::Args)]
pub struct SignerArgs {
    /// Delegated role to sign as (e.g. a CI robot's)
    #[arg(long)]
    pub role: Option<String>,
    /// Encrypted private key file of the delegated role [default: the
    /// home's one key of the role: of the GUN, or stored under its name]
    #[arg(long, requires = "role")]
    pub key: Option<PathBuf>,
}
