//! The floors a publish cannot go below (issue 10, BENCHMARKS.md "Floors"):
//! ed25519 sign and verify, canonical JSON, sha256 and parsing of a large
//! targets file (10,000 tags, what `tag set` writes), and the encrypted key
//! file's decryption (PBKDF2, 600,000 rounds) that every `tag set` pays;
//! and what the server does to the snapshot of 1,024 bins it signs on
//! every binned publish.
//!
//!   cargo bench -p tagtrust-shared --bench floors
//!
//! Not run by the test suite: nextest does not run benches.

use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::collections::BTreeMap;
use std::hint::black_box;
use tagtrust_shared::canonical::to_canonical_json;
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_shared::{MetaFile, Metadata, SigningKey, Snapshot, TargetFile, Targets};

/// How many tags the large targets file holds.
const TAGS: usize = 10_000;

/// How many hashed bins the snapshot of a binned repository lists.
const BINS: usize = 1024;

/// The `signed` of a snapshot of `BINS` bins and targets, each listed by
/// version only, as the server signs one on every binned publish.
fn binned_snapshot() -> Snapshot {
    let meta = (0..BINS)
        .map(|n| (format!("bins-{n:03x}.json"), MetaFile::version_only(1)))
        .chain([("targets.json".to_string(), MetaFile::version_only(2))])
        .collect();
    Snapshot::new(7, Utc::now() + Duration::days(7), meta)
}

/// A signed targets file of `TAGS` tags as `tag set` writes them (hex
/// sha256, a size, the default media type left implicit).
fn large_targets(key: &SigningKey) -> Metadata<Targets> {
    let mut targets = Targets::new(2, Utc::now() + Duration::days(90));
    for n in 0..TAGS {
        let digest = sha256_hex(format!("bench-{n}").as_bytes());
        let file = TargetFile {
            length: 1000 + n as u64,
            hashes: BTreeMap::from([("sha256".to_string(), digest)]),
            custom: None,
            extra: Default::default(),
        };
        targets.targets.insert(format!("tag-{n:05}"), file);
    }
    let mut metadata = Metadata::new(targets).expect("no floats");
    metadata.sign(key);
    metadata
}

fn floors(c: &mut Criterion) {
    let key = SigningKey::generate();
    let public = key.public_key();
    let targets = large_targets(&key);
    let canonical = targets.canonical_signed().to_vec();
    let bytes = targets.to_bytes();
    // A timestamp's `signed` is about 300 bytes: what the server signs twice
    // (snapshot and timestamp are each about that size without bins).
    let small = vec![b'x'; 300];
    let small_sig = key.sign(&small).sig;
    let large_sig = key.sign(&canonical).sig;

    let mut g = c.benchmark_group("ed25519");
    g.bench_function("sign 300 B", |b| b.iter(|| key.sign(black_box(&small))));
    g.bench_function("verify 300 B", |b| {
        b.iter(|| assert!(public.verify(black_box(&small), &small_sig).unwrap()))
    });
    g.throughput(Throughput::Bytes(canonical.len() as u64));
    g.bench_function("sign targets of 10,000 tags", |b| {
        b.iter(|| key.sign(black_box(&canonical)))
    });
    g.bench_function("verify targets of 10,000 tags", |b| {
        b.iter(|| assert!(public.verify(black_box(&canonical), &large_sig).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("targets of 10,000 tags");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("canonical JSON of the typed role", |b| {
        b.iter(|| to_canonical_json(black_box(&targets.signed)).unwrap())
    });
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    g.bench_function("canonical JSON of a parsed value", |b| {
        b.iter(|| to_canonical_json(black_box(&value["signed"])).unwrap())
    });
    g.bench_function("sha256", |b| b.iter(|| sha256_hex(black_box(&bytes))));
    g.bench_function("parse (Metadata::from_bytes)", |b| {
        b.iter(|| Metadata::<Targets>::from_bytes(black_box(&bytes)).unwrap())
    });
    g.bench_function("envelope bytes (Metadata::to_bytes)", |b| {
        b.iter(|| black_box(&targets).to_bytes())
    });
    g.finish();

    let snapshot = binned_snapshot();
    let snapshot_canonical = to_canonical_json(&snapshot).unwrap();
    let mut g = c.benchmark_group("snapshot of 1,024 bins");
    g.throughput(Throughput::Bytes(snapshot_canonical.len() as u64));
    g.bench_function("canonical JSON of the typed role", |b| {
        b.iter(|| to_canonical_json(black_box(&snapshot)).unwrap())
    });
    g.bench_function("sign", |b| {
        b.iter(|| key.sign(black_box(&snapshot_canonical)))
    });
    g.bench_function("sha256", |b| {
        b.iter(|| sha256_hex(black_box(&snapshot_canonical)))
    });
    g.finish();

    let pem = key.to_encrypted_pem("bench").unwrap();
    let mut g = c.benchmark_group("key file");
    g.sample_size(10);
    g.bench_function("decrypt (PBKDF2-HMAC-SHA256, 600,000 rounds)", |b| {
        b.iter_batched(
            || pem.clone(),
            |pem| SigningKey::from_encrypted_pem(&pem, "bench").unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, floors);
criterion_main!(benches);
