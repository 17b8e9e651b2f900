//! Where passphrases for private keys come from: a source the caller
//! provides. The library never reads the environment or prompts; the
//! `tagtrust` CLI's source reads `TAGTRUST_PASSPHRASE` or asks on the
//! terminal, a program can hand in its own (a secret store, a fixed value).

use std::sync::Arc;

/// Why no passphrase could be had.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PassphraseError(pub String);

/// Supplies the passphrase for a private key, given the prompt that says
/// which key (`"Passphrase for the targets key of acme/app: "`).
pub trait PassphraseSource: Send + Sync {
    fn passphrase(&self, prompt: &str) -> Result<String, PassphraseError>;
}

impl<F> PassphraseSource for F
where
    F: Fn(&str) -> Result<String, PassphraseError> + Send + Sync,
{
    fn passphrase(&self, prompt: &str) -> Result<String, PassphraseError> {
        self(prompt)
    }
}

/// One passphrase for every key.
#[derive(Clone)]
pub struct FixedPassphrase(pub String);

impl std::fmt::Debug for FixedPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedPassphrase(..)")
    }
}

impl PassphraseSource for FixedPassphrase {
    fn passphrase(&self, _prompt: &str) -> Result<String, PassphraseError> {
        Ok(self.0.clone())
    }
}

/// No passphrase available: every request fails with this message (for
/// programs that only read, or a caller with no way to ask).
#[derive(Debug, Clone)]
pub struct NoPassphrase;

impl PassphraseSource for NoPassphrase {
    fn passphrase(&self, _prompt: &str) -> Result<String, PassphraseError> {
        Err(PassphraseError("no passphrase source was given".into()))
    }
}

/// A shared passphrase source, as operations keep it.
pub type Passphrases = Arc<dyn PassphraseSource>;
