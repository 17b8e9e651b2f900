//! Gzip copies of served metadata for clients that send
//! `Accept-Encoding: gzip`: each file is compressed once and the copy kept,
//! least recently used evicted first, within a byte budget (a quarter of
//! `--file-cache-bytes`; 0 compresses on every request).
//!
//! Keyed by the sha256 of the uncompressed bytes, so an entry is never
//! stale: a new version of a role is another key, and no publish, re-sign
//! or deletion has to invalidate anything here. Compressing once instead of
//! per response (actix-web's `Compress` middleware) is what keeps a gzip
//! read of a cached file as cheap as a plain one (BENCHMARKS.md,
//! "Compressed responses").

use crate::budget_lru::{BudgetLru, Cost};
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// Files smaller than this are always sent as they are: a timestamp (about
/// 500 bytes) fits in one packet either way, and gzip's header and trailer
/// would eat most of what it saves.
pub(crate) const MIN_GZIP_BYTES: usize = 1024;

/// Files this large are compressed on the blocking pool, not on the worker
/// that serves every other request.
pub(crate) const BLOCKING_GZIP_BYTES: usize = 64 * 1024;

/// What an entry costs beyond its bytes (key, bookkeeping).
const OVERHEAD: usize = 128;

/// The gzip copies, by the sha256 of the uncompressed bytes.
pub(crate) type GzipCache = BudgetLru<Bytes>;

impl Cost for Bytes {
    fn cost(&self) -> usize {
        self.len() + OVERHEAD
    }
}

/// `bytes` gzip-compressed at the fastest level (nginx's default too): the
/// first client of every new snapshot waits for it, and a 1,024-bin
/// snapshot took ~3 M instructions at the default level, a fifth of the
/// server's work per tag set, for a file 5% smaller.
pub(crate) fn gzip(bytes: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::fast());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("writing to a Vec does not fail")
}

/// Does an `Accept-Encoding` header (all its values) accept gzip? Yes when
/// it lists `gzip` (or `x-gzip`) with a non-zero q, or `*` with a non-zero q
/// and no `gzip` entry (RFC 9110 §12.5.3). A client that sent no such header
/// gets the stored bytes.
pub(crate) fn accepts_gzip<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    let (mut gzip, mut any) = (None, None);
    for coding in values.into_iter().flat_map(|v| v.split(',')) {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if name == "*" {
            any = Some(q);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn which_headers_accept_gzip() {
        for yes in [
            "gzip",
            "gzip, deflate, br",
            "br;q=1.0, GZIP;q=0.5",
            "x-gzip",
            "*",
            "identity, *;q=0.1",
        ] {
            assert!(accepts_gzip([yes]), "{yes}");
        }
        for no in [
            "",
            "identity",
            "br, zstd",
            "gzip;q=0",
            "*;q=0",
            "gzip;q=0, *",
        ] {
            assert!(!accepts_gzip([no]), "{no}");
        }
        assert!(accepts_gzip(["br", "gzip"]), "several header lines");
        assert!(!accepts_gzip(std::iter::empty()), "no header");
    }

    #[test]
    fn copies_decompress_to_the_bytes_and_the_budget_holds() {
        let file = br#"{"signed":{"targets":{}}}"#.repeat(100);
        let mut out = Vec::new();
        GzDecoder::new(&gzip(&file)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, file);

        let cache = GzipCache::new(3 * (100 + OVERHEAD));
        for n in 0..4 {
            cache.put(&format!("{n:064x}"), Bytes::from(vec![b'x'; 100]));
        }
        assert!(
            cache.get(&format!("{:064x}", 0)).is_none(),
            "the oldest went"
        );
        assert!(cache.get(&format!("{:064x}", 3)).is_some());
        assert!(cache.bytes() <= 3 * (100 + OVERHEAD));
        let off = GzipCache::new(0);
        off.put("a", Bytes::from_static(b"x"));
        assert!(off.get("a").is_none());
    }
}
