//! OLPC canonical JSON: the byte form TUF signatures are computed over.

use crate::error::{Error, Result};
use olpc_cjson::CanonicalFormatter;
use serde::Serialize;

/// Serialise `value` as OLPC canonical JSON (sorted keys, no insignificant
/// whitespace, integers only).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .map_err(|e| Error::Canonical(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let v = json!({"b": 1, "a": {"d": [1, 2], "c": "x\"y"}});
        assert_eq!(
            to_canonical_json(&v).unwrap(),
            br#"{"a":{"c":"x\"y","d":[1,2]},"b":1}"#.to_vec()
        );
    }

    #[test]
    fn refuses_floats() {
        assert!(to_canonical_json(&json!({"a": 1.5})).is_err());
    }
}
