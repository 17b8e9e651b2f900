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
//!
//! One writer, `Writer`, a `serde::Serializer`, serves typed roles and
//! parsed `serde_json::Value`s alike: a typed role is written straight from
//! its fields, without the `Value` tree `serde_json::to_value` would build
//! first (a tree of 1,025 snapshot entries was a sixth of a binned
//! publish). Each object is written in place in the order its entries
//! come; only an object whose keys did not come sorted is put in order
//! afterwards, by moving its own bytes once.

use crate::error::{Error, Result};
use serde::ser::{self, Serialize};
use serde_json::Value;
use std::ops::Range;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Serialise `value` as OLPC canonical JSON (sorted keys, no insignificant
/// whitespace, integers only).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    write(value, Strings::Normalise)
}

/// [`to_canonical_json`] of a parsed JSON value.
pub fn canonical_value(value: &Value) -> Result<Vec<u8>> {
    write(value, Strings::Normalise)
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
    write(value, Strings::RequireNfc)
}

fn write<T: Serialize + ?Sized>(value: &T, strings: Strings) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    value
        .serialize(Writer {
            out: &mut out,
            strings,
        })
        .map_err(|e| Error::Canonical(e.0))?;
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

/// Why a value has no canonical form (a float, a key that is not a
/// string, a non-NFC string where one is refused, or the value's own
/// `Serialize` refusing).
#[derive(Debug)]
struct Unwritable(String);

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unwritable {}

impl ser::Error for Unwritable {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Unwritable(msg.to_string())
    }
}

fn no_floats() -> Unwritable {
    Unwritable("floating point numbers are not allowed in canonical JSON".into())
}

type Written = std::result::Result<(), Unwritable>;

/// `s` in NFC between quotes, `"` and `\` escaped by a backslash (or
/// refused if it is not in NFC and `strings` says so).
fn write_string(s: &str, strings: Strings, out: &mut Vec<u8>) -> Written {
    out.push(b'"');
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        escape_str(s, out);
    } else {
        match strings {
            Strings::Normalise => escape_str(&s.nfc().collect::<String>(), out),
            Strings::RequireNfc if unicode_normalization::is_nfc(s) => escape_str(s, out),
            Strings::RequireNfc => {
                return Err(Unwritable(format!(
                    "string {:?} is not in Unicode Normalization Form C",
                    s.chars().take(100).collect::<String>()
                )))
            }
        }
    }
    out.push(b'"');
    Ok(())
}

/// `s` with `"` and `\` escaped, copied in runs: both are ASCII, so they
/// never occur inside a multi-byte UTF-8 sequence.
fn escape_str(s: &str, out: &mut Vec<u8>) {
    let mut rest = s.as_bytes();
    while let Some(at) = rest.iter().position(|&b| b == b'"' || b == b'\\') {
        out.extend_from_slice(&rest[..at]);
        out.push(b'\\');
        out.push(rest[at]);
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// The serializer: appends the canonical form of what it is given to `out`.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    strings: Strings,
}

impl<'a> Writer<'a> {
    fn integer(self, i: impl itoa::Integer) -> Written {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        Ok(())
    }

    fn raw(self, bytes: &[u8]) -> Written {
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn array(self) -> Array<'a> {
        self.out.push(b'[');
        Array {
            out: self.out,
            strings: self.strings,
            first: true,
        }
    }

    fn object(self) -> Object<'a> {
        self.out.push(b'{');
        let start = self.out.len();
        Object {
            out: self.out,
            strings: self.strings,
            start,
            entries: Vec::new(),
            sorted: true,
        }
    }

    /// `{"variant":` … `}` around an enum variant's content.
    fn variant(self, variant: &str) -> std::result::Result<Writer<'a>, Unwritable> {
        self.out.push(b'{');
        write_string(variant, self.strings, self.out)?;
        self.out.push(b':');
        Ok(self)
    }
}

impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = Unwritable;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Variant<Array<'a>>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Variant<Object<'a>>;

    fn serialize_bool(self, v: bool) -> Written {
        self.raw(if v { b"true" } else { b"false" })
    }
    fn serialize_i8(self, v: i8) -> Written {
        self.integer(v)
    }
    fn serialize_i16(self, v: i16) -> Written {
        self.integer(v)
    }
    fn serialize_i32(self, v: i32) -> Written {
        self.integer(v)
    }
    fn serialize_i64(self, v: i64) -> Written {
        self.integer(v)
    }
    fn serialize_i128(self, v: i128) -> Written {
        // As serde_json's values hold them: within 64 bits.
        match (u64::try_from(v), i64::try_from(v)) {
            (Ok(v), _) => self.integer(v),
            (_, Ok(v)) => self.integer(v),
            _ => Err(Unwritable("number out of range".into())),
        }
    }
    fn serialize_u8(self, v: u8) -> Written {
        self.integer(v)
    }
    fn serialize_u16(self, v: u16) -> Written {
        self.integer(v)
    }
    fn serialize_u32(self, v: u32) -> Written {
        self.integer(v)
    }
    fn serialize_u64(self, v: u64) -> Written {
        self.integer(v)
    }
    fn serialize_u128(self, v: u128) -> Written {
        match u64::try_from(v) {
            Ok(v) => self.integer(v),
            Err(_) => Err(Unwritable("number out of range".into())),
        }
    }
    fn serialize_f32(self, _: f32) -> Written {
        Err(no_floats())
    }
    fn serialize_f64(self, _: f64) -> Written {
        Err(no_floats())
    }
    fn serialize_char(self, v: char) -> Written {
        write_string(v.encode_utf8(&mut [0; 4]), self.strings, self.out)
    }
    fn serialize_str(self, v: &str) -> Written {
        write_string(v, self.strings, self.out)
    }
    fn serialize_bytes(self, v: &[u8]) -> Written {
        // As serde_json writes bytes: an array of numbers.
        let mut array = self.array();
        for b in v {
            ser::SerializeSeq::serialize_element(&mut array, b)?;
        }
        ser::SerializeSeq::end(array)
    }
    fn serialize_none(self) -> Written {
        self.raw(b"null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Written {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Written {
        self.raw(b"null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Written {
        self.raw(b"null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Written {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Written {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Written {
        let Writer { out, strings } = self.variant(variant)?;
        value.serialize(Writer {
            out: &mut *out,
            strings,
        })?;
        out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> std::result::Result<Array<'a>, Unwritable> {
        Ok(self.array())
    }
    fn serialize_tuple(self, _: usize) -> std::result::Result<Array<'a>, Unwritable> {
        Ok(self.array())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Array<'a>, Unwritable> {
        Ok(self.array())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> std::result::Result<Variant<Array<'a>>, Unwritable> {
        Ok(Variant(self.variant(variant)?.array()))
    }
    fn serialize_map(self, _: Option<usize>) -> std::result::Result<Object<'a>, Unwritable> {
        Ok(self.object())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Object<'a>, Unwritable> {
        Ok(self.object())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> std::result::Result<Variant<Object<'a>>, Unwritable> {
        Ok(Variant(self.variant(variant)?.object()))
    }
}

/// An array being written.
struct Array<'a> {
    out: &'a mut Vec<u8>,
    strings: Strings,
    first: bool,
}

impl<'a> Array<'a> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(Writer {
            out: &mut *self.out,
            strings: self.strings,
        })
    }

    fn finish(self) -> &'a mut Vec<u8> {
        self.out.push(b']');
        self.out
    }
}

/// The three sequence traits are one array to this writer.
macro_rules! array_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Array<'_> {
            type Ok = ();
            type Error = Unwritable;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
                self.element(value)
            }
            fn end(self) -> Written {
                self.finish();
                Ok(())
            }
        }
    };
}
array_impl!(SerializeSeq, serialize_element);
array_impl!(SerializeTuple, serialize_element);
array_impl!(SerializeTupleStruct, serialize_field);

/// An object being written: its entries go to `out` as they come (after
/// the `{` at `start`), each entry's key and value remembered by their
/// place there, so an object whose keys came sorted (a `BTreeMap` of
/// ASCII names, the usual case) is finished by its `}` alone.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    strings: Strings,
    start: usize,
    /// Each entry's written key (quotes included) and value, in `out`.
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// Every key so far written after a smaller one.
    sorted: bool,
}

impl<'a> Object<'a> {
    fn key(&mut self, key: &str) -> Written {
        if !self.entries.is_empty() {
            self.out.push(b',');
        }
        let at = self.out.len();
        write_string(key, self.strings, self.out)?;
        self.key_written(at)
    }

    /// The key just written at `at`: note whether the keys are still in order.
    fn key_written(&mut self, at: usize) -> Written {
        let key = at..self.out.len();
        if let Some((previous, _)) = self.entries.last() {
            if self.out[previous.clone()] >= self.out[key.clone()] {
                self.sorted = false;
            }
        }
        self.out.push(b':');
        let value_at = self.out.len();
        self.entries.push((key, value_at..value_at));
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
        value.serialize(Writer {
            out: &mut *self.out,
            strings: self.strings,
        })?;
        let end = self.out.len();
        if let Some((_, written)) = self.entries.last_mut() {
            written.end = end;
        }
        Ok(())
    }

    /// Sorted by the keys as written (normalised and escaped), as the
    /// formatter sorts them; of keys written alike (distinct keys with one
    /// normal form, or a flattened field repeating one), the last wins.
    fn finish(mut self) -> &'a mut Vec<u8> {
        if !self.sorted {
            let start = self.start;
            let written = self.out.split_off(start);
            let at = |r: &Range<usize>| r.start - start..r.end - start;
            let entries = &mut self.entries;
            // Stable: keys written alike keep their order.
            entries.sort_by(|a, b| written[at(&a.0)].cmp(&written[at(&b.0)]));
            let mut first = true;
            for (i, (key, value)) in entries.iter().enumerate() {
                let key = &written[at(key)];
                if entries
                    .get(i + 1)
                    .is_some_and(|next| &written[at(&next.0)] == key)
                {
                    continue;
                }
                if !first {
                    self.out.push(b',');
                }
                first = false;
                self.out.extend_from_slice(key);
                self.out.push(b':');
                self.out.extend_from_slice(&written[at(value)]);
            }
        }
        self.out.push(b'}');
        self.out
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Unwritable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Written {
        if !self.entries.is_empty() {
            self.out.push(b',');
        }
        let at = self.out.len();
        key.serialize(KeyWriter {
            out: &mut *self.out,
            strings: self.strings,
        })?;
        self.key_written(at)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
        self.value(value)
    }
    fn end(self) -> Written {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = Unwritable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Written {
        self.key(key)?;
        self.value(value)
    }
    fn end(self) -> Written {
        self.finish();
        Ok(())
    }
}

/// An enum variant's content inside `{"variant":` … `}`.
struct Variant<C>(C);

impl ser::SerializeTupleVariant for Variant<Array<'_>> {
    type Ok = ();
    type Error = Unwritable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Written {
        self.0.element(value)
    }
    fn end(self) -> Written {
        self.0.finish().push(b'}');
        Ok(())
    }
}

impl ser::SerializeStructVariant for Variant<Object<'_>> {
    type Ok = ();
    type Error = Unwritable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Written {
        self.0.key(key)?;
        self.0.value(value)
    }
    fn end(self) -> Written {
        self.0.finish().push(b'}');
        Ok(())
    }
}

/// An object key: a string (integers written as strings, as serde_json
/// does); anything else has no canonical form.
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
    strings: Strings,
}

impl KeyWriter<'_> {
    fn integer(self, i: impl itoa::Integer) -> Written {
        self.out.push(b'"');
        self.out
            .extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        self.out.push(b'"');
        Ok(())
    }
}

fn not_a_string_key() -> Unwritable {
    Unwritable("object keys must be strings".into())
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unwritable;
    type SerializeSeq = ser::Impossible<(), Unwritable>;
    type SerializeTuple = ser::Impossible<(), Unwritable>;
    type SerializeTupleStruct = ser::Impossible<(), Unwritable>;
    type SerializeTupleVariant = ser::Impossible<(), Unwritable>;
    type SerializeMap = ser::Impossible<(), Unwritable>;
    type SerializeStruct = ser::Impossible<(), Unwritable>;
    type SerializeStructVariant = ser::Impossible<(), Unwritable>;

    fn serialize_str(self, v: &str) -> Written {
        write_string(v, self.strings, self.out)
    }
    fn serialize_char(self, v: char) -> Written {
        write_string(v.encode_utf8(&mut [0; 4]), self.strings, self.out)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Written {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Written {
        value.serialize(self)
    }
    fn serialize_i8(self, v: i8) -> Written {
        self.integer(v)
    }
    fn serialize_i16(self, v: i16) -> Written {
        self.integer(v)
    }
    fn serialize_i32(self, v: i32) -> Written {
        self.integer(v)
    }
    fn serialize_i64(self, v: i64) -> Written {
        self.integer(v)
    }
    fn serialize_u8(self, v: u8) -> Written {
        self.integer(v)
    }
    fn serialize_u16(self, v: u16) -> Written {
        self.integer(v)
    }
    fn serialize_u32(self, v: u32) -> Written {
        self.integer(v)
    }
    fn serialize_u64(self, v: u64) -> Written {
        self.integer(v)
    }
    fn serialize_bool(self, _: bool) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_f32(self, _: f32) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_f64(self, _: f64) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_bytes(self, _: &[u8]) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_none(self) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_unit(self) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Written {
        Err(not_a_string_key())
    }
    fn serialize_seq(
        self,
        _: Option<usize>,
    ) -> std::result::Result<Self::SerializeSeq, Unwritable> {
        Err(not_a_string_key())
    }
    fn serialize_tuple(self, _: usize) -> std::result::Result<Self::SerializeTuple, Unwritable> {
        Err(not_a_string_key())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleStruct, Unwritable> {
        Err(not_a_string_key())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleVariant, Unwritable> {
        Err(not_a_string_key())
    }
    fn serialize_map(
        self,
        _: Option<usize>,
    ) -> std::result::Result<Self::SerializeMap, Unwritable> {
        Err(not_a_string_key())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStruct, Unwritable> {
        Err(not_a_string_key())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStructVariant, Unwritable> {
        Err(not_a_string_key())
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

    /// A typed value is written as its `serde_json::Value` is (what
    /// `to_canonical_json` wrote by way of `serde_json::to_value` before it
    /// wrote types directly): struct fields out of key order, a flattened
    /// map repeating a field and holding NFC-equal keys, every kind of enum
    /// variant, integer map keys, bytes, options, units.
    #[test]
    fn typed_values_are_written_as_their_json_values_are() {
        #[derive(serde::Serialize)]
        enum Kind {
            Unit,
            Newtype(u8),
            Tuple(i32, String),
            Struct { z: u8, a: Option<u8> },
        }
        #[derive(serde::Serialize)]
        struct Unordered {
            zeta: Vec<Kind>,
            alpha: BTreeMap<u32, &'static str>,
            #[serde(with = "serde_bytes_as_seq")]
            bytes: Vec<u8>,
            unit: (),
            none: Option<u8>,
            #[serde(flatten)]
            extra: serde_json::Map<String, Value>,
        }
        mod serde_bytes_as_seq {
            pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(v)
            }
        }
        use std::collections::BTreeMap;
        let mut extra = serde_json::Map::new();
        extra.insert("alpha".into(), json!("replaces the field"));
        extra.insert("K1".into(), json!(1));
        extra.insert("\u{212a}1".into(), json!(2));
        extra.insert(
            "caf\u{e9}".into(),
            json!({"b": [1, {"a": null}], "a": true}),
        );
        let value = Unordered {
            zeta: vec![
                Kind::Unit,
                Kind::Newtype(7),
                Kind::Tuple(-3, "t\"q".into()),
                Kind::Struct { z: 1, a: None },
            ],
            alpha: [(10, "ten"), (2, "two")].into(),
            bytes: vec![0, 255],
            unit: (),
            none: None,
            extra,
        };
        let via_value = canonical_value(&serde_json::to_value(&value).unwrap()).unwrap();
        assert_eq!(to_canonical_json(&value).unwrap(), via_value);

        // Metadata as the client and server sign it: keys, delegations of
        // both kinds, custom data and unknown fields.
        let key = json!({"keytype": "ed25519", "scheme": "ed25519",
                         "keyval": {"public": "ab".repeat(32)}, "x-extra": [1]});
        let id = "0f".repeat(32);
        let common = |kind: &str| {
            json!({"_type": kind, "spec_version": "1.0.31", "version": 3,
                                         "expires": "2030-01-01T00:00:00Z", "x-tagtrust-signed-at": 5})
        };
        let mut targets = common("targets");
        targets["targets"] = json!({"latest": {"length": 12, "hashes": {"sha256": "00".repeat(32)},
                                               "custom": {"mediaType": "m", "z": {"b": 1, "a": 2}}}});
        targets["delegations"] = json!({"keys": {&id: key},
            "roles": [{"name": "ci", "keyids": [&id], "threshold": 1, "terminating": false, "paths": ["v*"]}],
            "succinct_roles": {"keyids": [&id], "threshold": 1, "bit_length": 10, "name_prefix": "bins"}});
        let mut root = common("root");
        root["consistent_snapshot"] = json!(true);
        root["keys"] = json!({&id: key});
        root["roles"] = json!({"root": {"keyids": [&id], "threshold": 1}});
        let mut snapshot = common("snapshot");
        snapshot["meta"] = json!({"targets.json": {"version": 3, "length": 9, "hashes": {"sha256": "11".repeat(32)}},
                                  "bins-000.json": {"version": 1}});
        let mut timestamp = common("timestamp");
        timestamp["meta"] = json!({"snapshot.json": {"version": 4}});
        fn same<T: serde::de::DeserializeOwned + Serialize>(value: Value) {
            let typed: T = serde_json::from_value(value).unwrap();
            assert_eq!(
                to_canonical_json(&typed).unwrap(),
                canonical_value(&serde_json::to_value(&typed).unwrap()).unwrap()
            );
        }
        same::<crate::Targets>(targets);
        same::<crate::Root>(root);
        same::<crate::Snapshot>(snapshot);
        same::<crate::Timestamp>(timestamp);
    }

    #[test]
    fn typed_floats_and_keys_that_are_not_strings_are_refused() {
        assert!(to_canonical_json(&1.5f64).is_err());
        assert!(to_canonical_json(&[(0.5f32, 1)].into_iter().collect::<Vec<_>>()).is_err());
        let sequence_keys: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        assert!(to_canonical_json(&sequence_keys).is_err());
        assert!(to_canonical_json(&u128::MAX).is_err());
        assert_eq!(to_canonical_json(&-1i128).unwrap(), b"-1");
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
