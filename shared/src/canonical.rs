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
    write_value(value, Strings::Normalise, &mut out)?;
    Ok(out)
}

/// The canonical bytes of a `signed` as parsed from a file, refusing it if
/// any string in it, object key or value, is not in Unicode NFC.
/// Canonical JSON writes strings in NFC, so such a string is signed as
/// another one, and of two keys of one object that NFC makes equal only
/// one is signed: the other would ride along unsigned in the parsed
/// metadata (a forged `K1` beside a signed `\u{212a}1`, KELVIN SIGN, which
/// NFC writes `K1`; a lookup of `K1` finds the forgery). Nothing that signs
/// canonical JSON writes a string out of NFC, so nothing verifiable is
/// refused. One walk: the check is made as each string is written.
pub fn canonical_signed(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write_value(value, Strings::RequireNfc, &mut out)?;
    Ok(out)
}

/// What the writer does with a string not in NFC.
#[derive(Clone, Copy)]
enum Strings {
    /// Write its NFC form, as olpc-cjson does.
    Normalise,
    /// Refuse it ([`canonical_signed`]).
    RequireNfc,
}

fn write_value(value: &Value, strings: Strings, out: &mut Vec<u8>) -> Result<()> {
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
        Value::String(s) => write_string(s, strings, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, strings, out)?;
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
                    write_string(key, strings, &mut written)?;
                    Ok((written, value))
                })
                .collect::<Result<_>>()?;
            entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep their order
            out.push(b'{');
            let mut first = true;
            for (i, (key, value)) in entries.iter().enumerate() {
                if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
                    // Dropped, but the formatter writes it before dropping
                    // it: refuse what it refuses (a float) all the same.
                    write_value(value, strings, &mut Vec::new())?;
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(key);
                out.push(b':');
                write_value(value, strings, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// `s` in NFC between quotes, `"` and `\` escaped by a backslash (or
/// refused if it is not in NFC and `strings` says so).
fn write_string(s: &str, strings: Strings, out: &mut Vec<u8>) -> Result<()> {
    out.push(b'"');
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        escape_into(s.chars(), out);
    } else {
        match strings {
            Strings::Normalise => escape_into(s.nfc(), out),
            Strings::RequireNfc if unicode_normalization::is_nfc(s) => escape_into(s.chars(), out),
            Strings::RequireNfc => {
                return Err(Error::Canonical(format!(
                    "string {:?} is not in Unicode Normalization Form C",
                    s.chars().take(100).collect::<String>()
                )))
            }
        }
    }
    out.push(b'"');
    Ok(())
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
        // Under a key a later NFC-equal one replaces (KELVIN SIGN is `K`).
        assert!(canonical_value(&json!({"K": 1.0, "\u{212a}": 1})).is_err());
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

    /// A small deterministic PRNG (xorshift64*), so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// Characters that matter to the writer: the escaped two, every
    /// control character, ASCII around the quote (sorting), starters NFC
    /// composes with marks, combining marks of several classes (NFC
    /// reorders them), singletons (Kelvin, Angstrom, Ohm, Greek question
    /// mark), Hangul jamo that compose, and characters beyond the BMP.
    fn random_char(rng: &mut Rng) -> char {
        const SPECIAL: &[char] = &[
            '"',
            '\\',
            '/',
            '!',
            '#',
            'A',
            'K',
            'a',
            'e',
            'o',
            ';',
            '\u{7f}',
            '\u{c5}',
            '\u{e9}',
            '\u{300}',
            '\u{301}',
            '\u{308}',
            '\u{30a}',
            '\u{323}',
            '\u{327}',
            '\u{344}',
            '\u{345}',
            '\u{5b0}',
            '\u{1e9b}',
            '\u{212a}',
            '\u{212b}',
            '\u{2126}',
            '\u{37e}',
            '\u{1100}',
            '\u{1161}',
            '\u{11a8}',
            '\u{ac00}',
            '\u{f900}',
            '\u{fb2c}',
            '\u{1d15e}',
            '\u{1f600}',
            '\u{10ffff}',
        ];
        match rng.below(4) {
            0 => char::from(rng.below(0x20) as u8),
            1 => char::from(0x20 + rng.below(0x5f) as u8),
            2 => *rng.pick(SPECIAL),
            _ => loop {
                if let Some(c) = char::from_u32((rng.next() % 0x11_0000) as u32) {
                    break c;
                }
            },
        }
    }

    fn random_string(rng: &mut Rng) -> String {
        (0..rng.below(7)).map(|_| random_char(rng)).collect()
    }

    /// Keys come mostly from a small pool of strings that are equal after
    /// NFC, or sort differently raw and written, so objects hold collisions.
    fn random_key(rng: &mut Rng) -> String {
        const POOL: &[&str] = &[
            "K",
            "\u{212a}",
            "\u{c5}",
            "A\u{30a}",
            "\u{212b}",
            "a",
            "a\"",
            "a#",
            "a!",
            "a\\",
            "e\u{301}",
            "\u{e9}",
            "o\u{323}\u{302}",
            "o\u{302}\u{323}",
            "\u{1100}\u{1161}",
            "\u{ac00}",
            "",
        ];
        if rng.below(6) == 0 {
            random_string(rng)
        } else {
            let mut key = rng.pick(POOL).to_string();
            if rng.below(2) == 0 {
                key.push_str(rng.pick::<&str>(POOL));
            }
            key
        }
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        let leaf = depth == 0 || rng.below(3) == 0;
        match rng.below(if leaf { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => match rng.below(5) {
                0 => json!(rng.next()),
                1 => json!(rng.next() as i64 | i64::MIN),
                2 => json!(*rng.pick(&[0, 1, -1, i64::MAX, i64::MIN])),
                3 => json!(u64::MAX),
                _ => json!(rng.below(1000)),
            },
            // Floats, integral ones too: both writers must refuse them.
            3 if rng.below(8) == 0 => json!(*rng.pick(&[1.0, -0.5, 1e300, 2.0f64.powi(64)])),
            3..=5 => Value::String(random_string(rng)),
            6 => Value::Array(
                (0..rng.below(5))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(9))
                    .map(|_| (random_key(rng), random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    /// Does some object in `value` hold two keys equal after NFC?
    fn has_nfc_collision(value: &Value) -> bool {
        match value {
            Value::Array(items) => items.iter().any(has_nfc_collision),
            Value::Object(map) => {
                let normal: std::collections::BTreeSet<String> =
                    map.keys().map(|k| k.nfc().collect()).collect();
                normal.len() < map.len() || map.values().any(has_nfc_collision)
            }
            _ => false,
        }
    }

    #[test]
    fn random_values_are_written_as_olpc_cjson_writes_them() {
        let mut rng = Rng(0x7461_6774_7275_7374);
        let (mut refused, mut collided) = (0, 0);
        for _ in 0..8000 {
            let value = random_value(&mut rng, 4);
            let ours = canonical_value(&value).ok();
            assert_eq!(
                ours,
                olpc(&value),
                "{value}: ours {:?}",
                ours.as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            );
            refused += usize::from(ours.is_none());
            collided += usize::from(has_nfc_collision(&value));
        }
        // The generator reaches what it is for: refusals and collisions.
        assert!(refused > 100, "{refused} refused");
        assert!(collided > 50, "{collided} collided");
    }
}
