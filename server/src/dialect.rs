//! The two metadata dialects one server speaks, one per repository: the
//! TUF specification's (`_type` `root`, what tagtrust's client, python-tuf
//! and tough read) and Notary v1's (`_type` `Root`, what the notary CLI and
//! Docker Content Trust read). A repository's first publish decides, from
//! the root it uploads; the dialect then stays until the repository is
//! deleted, and a file of the other one is refused.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Tuf,
    Notary,
}

impl Dialect {
    /// The stored form (`repositories.dialect`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Tuf => "tuf",
            Dialect::Notary => "notary",
        }
    }

    pub fn parse(text: &str) -> Option<Dialect> {
        match text {
            "tuf" => Some(Dialect::Tuf),
            "notary" => Some(Dialect::Notary),
            _ => None,
        }
    }

    /// The dialect a metadata file is written in, by its `signed._type`:
    /// Notary capitalises the role type (`Root`, `Targets`, `Snapshot`,
    /// `Timestamp`), the specification does not. `None` when the file has
    /// no readable `_type` (the plan then says what is wrong with it).
    pub fn of_file(bytes: &[u8]) -> Option<Dialect> {
        let (kind, _) = declared(bytes).ok()?;
        match kind.as_str() {
            "root" | "targets" | "snapshot" | "timestamp" => Some(Dialect::Tuf),
            "Root" | "Targets" | "Snapshot" | "Timestamp" => Some(Dialect::Notary),
            _ => None,
        }
    }
}

/// The `_type` and version a metadata file (of either dialect) says it is,
/// without trusting it.
pub(crate) fn declared(bytes: &[u8]) -> Result<(String, u64), String> {
    #[derive(serde::Deserialize)]
    struct Head {
        signed: Signed,
    }
    #[derive(serde::Deserialize)]
    struct Signed {
        #[serde(rename = "_type")]
        kind: String,
        version: u64,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok((head.signed.kind, head.signed.version))
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dialect::Tuf => "TUF",
            Dialect::Notary => "Notary",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_as_its_dialect() {
        let notary = include_bytes!("../../docs/notary-samples/root.json");
        assert_eq!(Dialect::of_file(notary), Some(Dialect::Notary));
        assert_eq!(
            Dialect::of_file(br#"{"signed":{"_type":"targets","version":1},"signatures":[]}"#),
            Some(Dialect::Tuf)
        );
        for unknown in [
            &b"{}"[..],
            b"[1]",
            br#"{"signed":{"_type":"ROOT","version":1}}"#,
        ] {
            assert_eq!(Dialect::of_file(unknown), None);
        }
        for d in [Dialect::Tuf, Dialect::Notary] {
            assert_eq!(Dialect::parse(d.as_str()), Some(d));
        }
    }
}
