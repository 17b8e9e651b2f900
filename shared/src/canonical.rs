//! OLPC canonical JSON: the byte form TUF signatures are computed over.
//!
//! Written here rather than through `olpc_cjson::CanonicalFormatter`
//! because every publish and every verification canonicalises whole
//! targets files and snapshots, and that formatter boxes a writer for each
//! character and copies each nested object's bytes once per level (6 MiB/s
//! on a 1.8 MB targets file; BENCHMARKS.md, "floors"). The output is
//! byte-for-byte the formatter's, which tough signs and verifies with: keys
//! sorted by their written bytes (a later duplicate replacing an earlier
//! one), no whitespace, integers only, strings in Unicode Normalization
//! Form C with only `"` and `\` escaped (by a backslash; every other
//! character written as is). The tests compare the two on every kind of
//! input.

use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Serialise `value` as OLPC canonical JSON (sorted keys, no insignificant
/// whitespace, integers only).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(value).map_err(|e| Error::Canonical(e.to_string()))?;
    canonical_value(&value)
}

/// [`to_canonical_json`] of a parsed JSON value (no conversion first).
pub fn canonical_value(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else {
                return Err(Error::Canonical(
                    "floating point numbers are not allowed in canonical JSON".into(),
                ));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Sorted by the keys as written (normalised and escaped), as
            // the formatter sorts them; of keys written alike (distinct
            // keys with one normal form), the last one serialised wins.
            let mut entries: Vec<(Vec<u8>, &Value)> = map
                .iter()
                .map(|(key, value)| {
                    let mut written = Vec::with_capacity(key.len() + 2);
                    write_string(key, &mut written);
                    (written, value)
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep their order
            out.push(b'{');
            let mut first = true;
            for (i, (key, value)) in entries.iter().enumerate() {
                if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(key);
                out.push(b':');
                write_value(value, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// `s` in NFC between quotes, `"` and `\` escaped by a backslash.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        escape_into(s.chars(), out);
    } else {
        escape_into(s.nfc(), out);
    }
    out.push(b'"');
}

fn escape_into(chars: impl Iterator<Item = char>, out: &mut Vec<u8>) {
    let mut buf = [0; 4];
    for c in chars {
        if c == '"' || c == '\\' {
            out.push(b'\\');
        }
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
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
        assert!(to_canonical_json(&json!([1.0])).is_err());
    }

    /// What `olpc_cjson`'s formatter (tough's canonical form) writes.
    fn olpc(value: &Value) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
        value.serialize(&mut ser).ok()?;
        Some(out)
    }

    /// Strings that exercise every rule: escapes, raw control characters,
    /// non-ASCII already in NFC, decomposed sequences NFC composes, keys
    /// that sort differently raw and escaped, keys equal after NFC.
    const STRINGS: &[&str] = &[
        "",
        "latest",
        "a\"b",
        "back\\slash",
        "/solidus",
        "ctl\u{1}\n\t\r\u{8}\u{c}\u{1f}",
        "caf\u{e9}",
        "cafe\u{301}",
        "\u{1e9b}\u{323}",
        "\u{301}lone combining",
        "a\"\u{301}",
        "a#",
        "\u{10ffff}\u{1f600}",
        "\u{212b}",
        "\u{c5}",
        "A\u{30a}",
    ];

    #[test]
    fn writes_what_olpc_cjson_writes() {
        let mut cases: Vec<Value> = STRINGS.iter().map(|s| json!(s)).collect();
        cases.extend([
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!([]),
            json!({}),
            json!([[], {}, [1, [2, [3]]]]),
        ]);
        // Every pair of strings as keys of one object (with nested values),
        // so raw-versus-written order and NFC collisions all occur.
        for (i, a) in STRINGS.iter().enumerate() {
            for (j, b) in STRINGS.iter().enumerate() {
                let mut map = serde_json::Map::new();
                map.insert(a.to_string(), json!(i));
                map.insert(b.to_string(), json!({ "n": j, *a: [b] }));
                cases.push(Value::Object(map));
            }
        }
        let mut all = serde_json::Map::new();
        for (i, s) in STRINGS.iter().enumerate() {
            all.insert(s.to_string(), json!([i, s, {"k": s}]));
        }
        cases.push(Value::Object(all));
        for case in &cases {
            assert_eq!(
                canonical_value(case).ok(),
                olpc(case),
                "{case}: ours {:?}",
                canonical_value(case).map(|b| String::from_utf8_lossy(&b).into_owned())
            );
        }
    }
}
