//! Local key operations a key holder runs by hand: make a key pair, copy an
//! encrypted key out of the home or into it, read the public key PEM files
//! others hand over, and say which key signs a role.
//!
//! Private keys never leave their encryption here: export and import move
//! the encrypted PEM as it is. Passphrases are arguments; asking for one is
//! the caller's business.

use crate::atomic_file::write_private_file;
use crate::home::{Home, KeyFile};
use crate::publisher::Signer;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tagtrust_shared::notary::NotaryPrivateKey;
use tagtrust_shared::{Gun, PrivateKey, PublicKey, SigningKey, TopLevelRole};

/// An error from the home or key storage, kept with its causes.
type HomeError = Box<dyn std::error::Error + Send + Sync>;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("public key {}", path.display())]
    PublicKey {
        path: PathBuf,
        #[source]
        source: tagtrust_shared::Error,
    },
    #[error("no local key with ID {prefix}")]
    NoSuchKey { prefix: String },
    #[error("key ID prefix {prefix} matches {count} keys; give more of it")]
    AmbiguousKeyId { prefix: String, count: usize },
    #[error(
        "this home holds no key of role {role} (of {gun}, or named {role}); give --key KEYFILE"
    )]
    NoRoleKey { role: String, gun: String },
    #[error("this home holds {count} keys of role {role}; give --key KEYFILE")]
    SeveralRoleKeys { role: String, count: usize },
    #[error("a tagtrust key file is imported with --role (the role or name to store it as)")]
    NeedsRole,
    #[error("the Notary key file's role: {0}")]
    NotaryRole(String),
    #[error("a Notary key file is opened with its Notary passphrase first")]
    NotaryKeyFile,
    #[error("not a Notary key file")]
    NotNotaryKeyFile,
    #[error("the Notary key {key_id}")]
    NotaryKey {
        key_id: String,
        #[source]
        source: tagtrust_shared::Error,
    },
    /// Encoding a key (encrypting it, writing its public PEM).
    #[error(transparent)]
    Key(#[from] tagtrust_shared::Error),
    /// Storing or listing keys in the home.
    #[error(transparent)]
    Home(HomeError),
}

type Result<T> = std::result::Result<T, KeyringError>;

fn home_error(error: impl Into<HomeError>) -> KeyringError {
    KeyringError::Home(error.into())
}

/// A key pair made by [`generate_key`]. Fields in name order: the JSON
/// report `key generate -o json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedKey {
    pub key_id: String,
    pub name: String,
    /// Where the encrypted private key was written.
    pub private_key_file: PathBuf,
    /// The public key, to hand to whoever delegates to it.
    pub public_key_pem: String,
}

/// Make an ed25519 key pair named `name` (e.g. a CI robot's), encrypt the
/// private key with `passphrase` and store it at `out`, or in the home
/// under its name when `out` is `None`.
pub fn generate_key(
    home: &Home,
    name: &str,
    out: Option<&Path>,
    passphrase: &str,
) -> Result<GeneratedKey> {
    let key = PrivateKey::from(SigningKey::generate());
    let private_key_file = match out {
        Some(path) => {
            write_private_file(path, key.to_encrypted_pem(passphrase)?.as_bytes())
                .map_err(home_error)?;
            path.to_path_buf()
        }
        None => home
            .save_named_key(name, &key, passphrase)
            .map_err(home_error)?,
    };
    Ok(GeneratedKey {
        key_id: key.key_id(),
        name: name.to_string(),
        private_key_file,
        public_key_pem: tagtrust_shared::keys::ed25519_public_to_pem(&key.public_key())?,
    })
}

/// Where a key was copied by [`export_key`] or [`KeyImport::store`].
#[derive(Debug, Clone, Serialize)]
pub struct StoredKey {
    pub file: PathBuf,
    pub key_id: String,
}

/// The one key among `keys` whose ID starts with `prefix`.
pub fn find_key<'k>(keys: &'k [KeyFile], prefix: &str) -> Result<&'k KeyFile> {
    let matching: Vec<&KeyFile> = keys
        .iter()
        .filter(|k| k.key_id.starts_with(prefix))
        .collect();
    match matching.as_slice() {
        [key] => Ok(key),
        [] => Err(KeyringError::NoSuchKey {
            prefix: prefix.to_string(),
        }),
        _ => Err(KeyringError::AmbiguousKeyId {
            prefix: prefix.to_string(),
            count: matching.len(),
        }),
    }
}

/// Copy the home's private key whose ID starts with `prefix` to `out`,
/// still encrypted (e.g. for another root key holder).
pub fn export_key(home: &Home, prefix: &str, out: &Path) -> Result<StoredKey> {
    let keys = home.list_keys().map_err(home_error)?;
    let key = find_key(&keys, prefix)?;
    let pem = std::fs::read(&key.path).map_err(|source| KeyringError::Read {
        path: key.path.clone(),
        source,
    })?;
    write_private_file(out, &pem).map_err(home_error)?;
    Ok(StoredKey {
        file: out.to_path_buf(),
        key_id: key.key_id.clone(),
    })
}

/// An encrypted private key file read for import, before its passphrase
/// is asked for (a file that cannot be read is said without a prompt):
/// tagtrust's own (encrypted PKCS#8 PEM), or a Notary trust directory's
/// `private/<keyid>.key` (a delegate bringing its Notary delegation key).
#[derive(Debug)]
pub struct KeyImport {
    pem: String,
    /// The Notary key file `pem` is, when it is one (it has Notary's
    /// `role:` header).
    notary: Option<NotaryPrivateKey>,
    /// The file's name without `.key`: Notary names key files by key ID.
    stem: String,
}

impl KeyImport {
    pub fn read(file: &Path) -> Result<KeyImport> {
        let pem = std::fs::read_to_string(file).map_err(|source| KeyringError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        let notary = NotaryPrivateKey::parse(&pem)
            .ok()
            .filter(|key| key.role.is_some());
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(KeyImport { pem, notary, stem })
    }

    /// For a Notary key file, the Notary role its header names (`root`,
    /// `targets`, `targets/ci`) and the key ID its name gives: what its
    /// Notary passphrase is asked for by (`None`: a tagtrust key file).
    pub fn notary_key(&self) -> Option<(&str, &str)> {
        let role = self.notary.as_ref()?.role.as_deref()?;
        Some((role, &self.stem))
    }

    /// The name a key is stored under when none is given: a Notary key's
    /// role in spec TUF (`targets/ci` is `ci`, as `migrate notary` names
    /// it; `root` and `targets` stay); a tagtrust key file has no default.
    pub fn default_role(&self) -> Result<String> {
        let Some((role, _)) = self.notary_key() else {
            return Err(KeyringError::NeedsRole);
        };
        crate::notary_convert::tuf_key_role(role)
            .map_err(|e| KeyringError::NotaryRole(e.to_string()))
    }

    /// Store a tagtrust key file in the home as it is, once `passphrase`
    /// opens it: as `gun`'s `role` key, or under `role` as a name without
    /// a GUN. A Notary key file goes through [`Self::open_notary`] and
    /// [`store_opened`] instead.
    pub fn store(
        &self,
        home: &Home,
        passphrase: &str,
        gun: Option<&Gun>,
        role: &str,
    ) -> Result<StoredKey> {
        if self.notary.is_some() {
            return Err(KeyringError::NotaryKeyFile);
        }
        let (key_id, file) = home
            .import_key(&self.pem, passphrase, gun, role)
            .map_err(home_error)?;
        Ok(StoredKey { file, key_id })
    }

    /// Open a Notary key file with its Notary passphrase (before the
    /// home's is asked for, so a wrong one is said first).
    pub fn open_notary(&self, notary_passphrase: &str) -> Result<PrivateKey> {
        let notary = self.notary.as_ref().ok_or(KeyringError::NotNotaryKeyFile)?;
        let opened =
            notary
                .decrypt(notary_passphrase)
                .map_err(|source| KeyringError::NotaryKey {
                    key_id: self.stem.clone(),
                    source,
                })?;
        Ok(opened.into())
    }
}

/// Store `key` (opened from another system's key file) in the home,
/// encrypted under `passphrase`, the home's, the form every key there
/// has: as `gun`'s `role` key, or under `role` as a name without a GUN.
pub fn store_opened(
    home: &Home,
    key: &PrivateKey,
    passphrase: &str,
    gun: Option<&Gun>,
    role: &str,
) -> Result<StoredKey> {
    let file = match gun {
        Some(gun) => home.save_key(gun, role, key, passphrase),
        None => home.save_named_key(role, key, passphrase),
    }
    .map_err(home_error)?;
    Ok(StoredKey {
        file,
        key_id: key.key_id(),
    })
}

/// Read ed25519 or ECDSA P-256 public key PEM files (made by `key
/// generate`, or `openssl pkey -pubout` of a P-256 key the keyring holds).
pub fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|path| {
            let pem = std::fs::read_to_string(path).map_err(|source| KeyringError::Read {
                path: path.clone(),
                source,
            })?;
            tagtrust_shared::keys::public_from_pem(&pem).map_err(|source| KeyringError::PublicKey {
                path: path.clone(),
                source,
            })
        })
        .collect()
}

/// Who signs a tag change of `gun`: the delegated `role` with its
/// `key_file`, or without one with the home's one key of that role (of
/// `gun`, or stored under that name: a migrated or imported delegation
/// key); top-level targets with the home's key when no role is given.
pub fn tag_signer(
    home: &Home,
    gun: &Gun,
    role: Option<String>,
    key_file: Option<PathBuf>,
) -> Result<Signer> {
    match (role, key_file) {
        (Some(role), Some(key_file)) => Ok(Signer::Delegated { role, key_file }),
        // `--role targets`: top-level targets, with the home's key.
        (Some(role), None) if TopLevelRole::parse(&role) == Some(TopLevelRole::Targets) => {
            Ok(Signer::Targets)
        }
        (Some(role), None) => {
            let key_file = role_key_file(home, gun, &role)?;
            Ok(Signer::Delegated { role, key_file })
        }
        _ => Ok(Signer::Targets),
    }
}

/// The home's one key file for delegated `role` of `gun`: among `gun`'s
/// keys of that role, else the keys stored under that name (not tied to
/// a GUN). Several are refused: the caller names one with `--key`.
fn role_key_file(home: &Home, gun: &Gun, role: &str) -> Result<PathBuf> {
    let keys = home.list_keys().map_err(home_error)?;
    let of_role = |gun: Option<&str>| -> Vec<&KeyFile> {
        keys.iter()
            .filter(|k| k.role == role && k.gun.as_deref() == gun)
            .collect()
    };
    let mut found = of_role(Some(gun.as_str()));
    if found.is_empty() {
        found = of_role(None);
    }
    match found.as_slice() {
        [key] => Ok(key.path.clone()),
        [] => Err(KeyringError::NoRoleKey {
            role: role.to_string(),
            gun: gun.to_string(),
        }),
        _ => Err(KeyringError::SeveralRoleKeys {
            role: role.to_string(),
            count: found.len(),
        }),
    }
}

/// Who re-signs `role` of `gun` on refresh: the home's keys for a
/// top-level role (the key file is not used), a delegated role's own
/// `key_file` else, or without one the home's one key of that role (as
/// [`tag_signer`] finds it).
pub fn refresh_signer(
    home: &Home,
    gun: &Gun,
    role: &str,
    key_file: Option<PathBuf>,
) -> Result<Signer> {
    if TopLevelRole::parse(role).is_some() {
        return Ok(Signer::Targets);
    }
    tag_signer(home, gun, Some(role.to_string()), key_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &str = "correct horse";

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        (dir, home)
    }

    #[test]
    fn generated_key_is_stored_encrypted_and_its_public_pem_reads_back() {
        let (dir, home) = home();
        let key = generate_key(&home, "ci-robot", None, PASSPHRASE).unwrap();
        let listed = home.list_keys().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key_id, key.key_id);
        assert_eq!(listed[0].role, "ci-robot");
        assert_eq!(listed[0].path, key.private_key_file);
        let opened = crate::home::load_key_file(&key.private_key_file, PASSPHRASE).expect("opens");
        assert_eq!(opened.key_id(), key.key_id);
        assert!(crate::home::load_key_file(&key.private_key_file, "wrong").is_err());

        let pem_file = dir.path().join("robot.pub.pem");
        std::fs::write(&pem_file, &key.public_key_pem).unwrap();
        let public = read_public_keys(std::slice::from_ref(&pem_file)).unwrap();
        assert_eq!(public, vec![opened.public_key()]);
    }

    #[test]
    fn generated_key_goes_to_the_file_asked_for() {
        let (dir, home) = home();
        let out = dir.path().join("elsewhere/robot.pem");
        let key = generate_key(&home, "robot", Some(&out), PASSPHRASE).unwrap();
        assert_eq!(key.private_key_file, out);
        assert!(home.list_keys().unwrap().is_empty());
        let opened = crate::home::load_key_file(&out, PASSPHRASE).unwrap();
        assert_eq!(opened.key_id(), key.key_id);
    }

    #[test]
    fn generated_key_json_has_the_report_fields() {
        let (_dir, home) = home();
        let key = generate_key(&home, "robot", None, PASSPHRASE).unwrap();
        let json = serde_json::to_value(&key).unwrap();
        let fields: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            ["key_id", "name", "private_key_file", "public_key_pem"]
        );
        assert!(key.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn export_copies_the_encrypted_file_by_unique_prefix() {
        let (dir, home) = home();
        let key = generate_key(&home, "robot", None, PASSPHRASE).unwrap();
        let out = dir.path().join("exported.pem");
        let stored = export_key(&home, &key.key_id[..8], &out).unwrap();
        assert_eq!(stored.key_id, key.key_id);
        assert_eq!(stored.file, out);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&key.private_key_file).unwrap()
        );
        let err = export_key(&home, "not-a-key-id", &out).unwrap_err();
        assert_eq!(err.to_string(), "no local key with ID not-a-key-id");
    }

    #[test]
    fn a_prefix_matching_several_keys_is_refused() {
        let keys: Vec<KeyFile> = ["abcd01", "abcd02", "ef"]
            .into_iter()
            .map(|id| KeyFile {
                gun: None,
                role: "robot".into(),
                key_id: id.into(),
                path: PathBuf::from(id),
            })
            .collect();
        assert_eq!(find_key(&keys, "abcd02").unwrap().key_id, "abcd02");
        assert_eq!(find_key(&keys, "e").unwrap().key_id, "ef");
        let err = find_key(&keys, "abcd").unwrap_err();
        assert_eq!(
            err.to_string(),
            "key ID prefix abcd matches 2 keys; give more of it"
        );
    }

    #[test]
    fn import_needs_the_passphrase_and_stores_the_file_unchanged() {
        let (dir, home) = home();
        let file = dir.path().join("handed-over.pem");
        let key = generate_key(&home, "other", Some(&file), PASSPHRASE).unwrap();
        let import = KeyImport::read(&file).unwrap();
        assert!(import.notary_key().is_none());
        assert!(matches!(
            import.default_role(),
            Err(KeyringError::NeedsRole)
        ));
        assert!(import.open_notary(PASSPHRASE).is_err());
        assert!(import.store(&home, "wrong", None, "holder").is_err());
        let gun = Gun::parse("acme/app").unwrap();
        let stored = import.store(&home, PASSPHRASE, Some(&gun), "root").unwrap();
        assert_eq!(stored.key_id, key.key_id);
        assert_eq!(
            std::fs::read(&stored.file).unwrap(),
            std::fs::read(&file).unwrap()
        );
        assert_eq!(
            home.list_keys().unwrap()[0].gun.as_deref(),
            Some("acme/app")
        );
    }

    /// A Notary delegation key file as notary 0.7 writes one: an encrypted
    /// PKCS#8 P-256 key with `role:` and `gun:` headers, named by key ID.
    fn notary_key_file(dir: &Path, role: &str, passphrase: &str) -> (PathBuf, PrivateKey) {
        let key = PrivateKey::from(tagtrust_shared::P256SigningKey::generate());
        let pem = key.to_encrypted_pem(passphrase).unwrap();
        let (begin, body) = pem.split_once('\n').unwrap();
        let text = format!("{begin}\nrole: {role}\ngun: example.com/acme/app\n\n{body}");
        let file = dir.join("0123abcd.key");
        std::fs::write(&file, text).unwrap();
        (file, key)
    }

    #[test]
    fn a_notary_key_is_stored_re_encrypted_under_the_homes_passphrase() {
        let (dir, home) = home();
        let (file, key) = notary_key_file(dir.path(), "targets/ci", "notary pw");
        let import = KeyImport::read(&file).unwrap();
        assert_eq!(import.notary_key(), Some(("targets/ci", "0123abcd")));
        assert_eq!(import.default_role().unwrap(), "ci");
        let err = import.open_notary("wrong").unwrap_err();
        assert_eq!(err.to_string(), "the Notary key 0123abcd");
        assert!(matches!(
            import.store(&home, "notary pw", None, "ci"),
            Err(KeyringError::NotaryKeyFile)
        ));
        assert!(home.list_keys().unwrap().is_empty());

        let opened = import.open_notary("notary pw").unwrap();
        let stored = store_opened(&home, &opened, PASSPHRASE, None, "ci").unwrap();
        assert_eq!(stored.key_id, key.key_id());
        let listed = home.list_keys().unwrap();
        assert_eq!(
            (listed[0].role.as_str(), listed[0].gun.as_deref()),
            ("ci", None)
        );
        // The home's passphrase opens it, the Notary one does not, and it
        // signs as the key it was.
        assert!(crate::home::load_key_file(&stored.file, "notary pw").is_err());
        let opened = crate::home::load_key_file(&stored.file, PASSPHRASE).unwrap();
        let sig = tagtrust_shared::keys::TufSigner::sign_tuf(&opened, b"m");
        assert!(key.public_key().verify(b"m", &sig.sig).unwrap());
        assert_eq!(sig.keyid, key.key_id());

        // Root and targets keys keep their role's name.
        let (root_file, _) = notary_key_file(dir.path(), "root", "notary pw");
        assert_eq!(
            KeyImport::read(&root_file).unwrap().default_role().unwrap(),
            "root"
        );
    }

    #[test]
    fn unreadable_files_name_the_path() {
        let missing = PathBuf::from("/nonexistent/tagtrust/key.pem");
        let err = KeyImport::read(&missing).unwrap_err();
        assert_eq!(err.to_string(), "reading /nonexistent/tagtrust/key.pem");
        let err = read_public_keys(std::slice::from_ref(&missing)).unwrap_err();
        assert!(matches!(err, KeyringError::Read { .. }), "{err}");
    }

    #[test]
    fn a_file_that_is_no_public_key_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("junk.pem");
        std::fs::write(&file, "not a key").unwrap();
        let err = read_public_keys(std::slice::from_ref(&file)).unwrap_err();
        assert_eq!(err.to_string(), format!("public key {}", file.display()));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn signers_for_tags_and_refresh() {
        let (_dir, home) = home();
        let gun = Gun::parse("acme/app").unwrap();
        let key = PathBuf::from("robot.pem");
        assert!(matches!(
            tag_signer(&home, &gun, None, None),
            Ok(Signer::Targets)
        ));
        let delegated = tag_signer(&home, &gun, Some("ci".into()), Some(key.clone())).unwrap();
        assert_eq!(delegated.role(), "ci");

        assert!(matches!(
            tag_signer(&home, &gun, Some("targets".into()), None),
            Ok(Signer::Targets)
        ));

        // Without --key: the home's one key of the role, the GUN's first.
        let err = tag_signer(&home, &gun, Some("ci".into()), None).unwrap_err();
        assert!(matches!(err, KeyringError::NoRoleKey { .. }), "{err}");
        let named = generate_key(&home, "ci", None, PASSPHRASE).unwrap();
        let found = |home: &Home| match tag_signer(home, &gun, Some("ci".into()), None) {
            Ok(Signer::Delegated { key_file, .. }) => key_file,
            other => panic!("{other:?}"),
        };
        assert_eq!(found(&home), named.private_key_file);
        let of_gun = PrivateKey::from(tagtrust_shared::P256SigningKey::generate());
        let gun_file = home.save_key(&gun, "ci", &of_gun, PASSPHRASE).unwrap();
        assert_eq!(found(&home), gun_file);
        let again = PrivateKey::from(SigningKey::generate());
        home.save_key(&gun, "ci", &again, PASSPHRASE).unwrap();
        let err = tag_signer(&home, &gun, Some("ci".into()), None).unwrap_err();
        assert!(
            matches!(err, KeyringError::SeveralRoleKeys { count: 2, .. }),
            "{err}"
        );

        for role in TopLevelRole::ALL.map(TopLevelRole::as_str) {
            assert!(matches!(
                refresh_signer(&home, &gun, role, Some(key.clone())),
                Ok(Signer::Targets)
            ));
        }
        let ci = refresh_signer(&home, &gun, "ci", Some(key.clone())).unwrap();
        assert!(
            matches!(&ci, Signer::Delegated { role, key_file } if role == "ci" && *key_file == key)
        );
        let err = refresh_signer(&home, &gun, "robot", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this home holds no key of role robot (of acme/app, or named robot); give --key KEYFILE"
        );
    }
}
