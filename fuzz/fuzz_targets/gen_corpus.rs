//! Not a fuzz target: writes the committed seed corpora,
//! `fuzz/corpus/<target>/<name>`, from the fixed-seed repository in
//! `tagtrust_fuzz::repo()`, then exits. Deterministic: run it again after
//! changing the repository or the input formats, and commit the result.
//! A libFuzzer binary (built like the targets, so no second build of the
//! dependencies) that does its work at initialisation:
//!
//!     cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --debug-assertions gen_corpus
#![no_main]
// `init` writes the corpus and exits: the fuzz body never runs.
#![allow(unreachable_code)]

use std::path::Path;
use tagtrust_fuzz::{join, repo};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// One uploaded part of a `publish_input` seed: file name and bytes.
type Part<'a> = (&'a str, &'a [u8]);

fn named(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = name.as_bytes().to_vec();
    out.push(b'\n');
    out.extend_from_slice(bytes);
    out
}

fn pretty(bytes: &[u8]) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("json");
    serde_json::to_vec_pretty(&v).expect("json")
}

libfuzzer_sys::fuzz_target!(
    init: {
        tagtrust_fuzz::self_check();
        write_corpus();
        std::process::exit(0);
    },
    |_data: &[u8]| {}
);

fn write_corpus() {
    let repo = repo();
    let (r1, r2, r3) = (&repo.release1, &repo.release2, &repo.release3);

    // metadata_parse: every real file, plus a few shapes other TUF
    // implementations write (pretty-printed, unknown fields, other keys).
    let m = "metadata_parse";
    write(m, "root-v1.json", &repo.root1);
    write(m, "root-v2.json", &repo.root2);
    write(m, "root-v1-pretty.json", &pretty(&repo.root1));
    write(m, "timestamp-v1.json", &r1.timestamp);
    write(m, "snapshot-v1.json", &r1.snapshot);
    write(m, "targets-v1.json", &r1.targets);
    write(m, "dev-v1.json", &r1.dev);
    write(m, "snapshot-v3-version-only.json", &r3.snapshot);
    write(m, "timestamp-expired.json", &repo.expired_timestamp);
    write(m, "targets-succinct.json", &repo.succinct_targets);
    let mut v: serde_json::Value = serde_json::from_slice(&repo.root1).expect("json");
    v["signed"]["x-unknown"] = serde_json::json!({"nested": [1, "two", null, true]});
    v["signatures"][0]["x-extra"] = serde_json::json!("field");
    write(
        m,
        "root-unknown-fields.json",
        &serde_json::to_vec(&v).expect("json"),
    );
    let mut v: serde_json::Value = serde_json::from_slice(&repo.root1).expect("json");
    let keys = v["signed"]["keys"].as_object_mut().expect("keys");
    keys.insert(
        "ecdsa-key".into(),
        serde_json::json!({
            "keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
            "keyval": {"public": "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"}
        }),
    );
    keys.insert(
        "rsa-key".into(),
        serde_json::json!({
            "keytype": "rsa", "scheme": "rsassa-pss-sha256",
            "keyval": {"public": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwc7teHMrRQsbv+3NbrRt\nWg5jKWquFh13i8qgMYRNrNC/OfZxgIGyZAqPjhQbDR3++6FqsWBWEUqTT7+NBDHM\n3/zoin8CGVoXZtkciKFpFSd6ej/zGUm77Q/9ZDNvwnE5nrlXYwg+uvBBTXL12r+E\nRKJO/vjaswIZRaKG+nQtyy1fFbwKYubLpWWUiz8wIalr9uIEct6/S0HDFkoXQIwd\nqCJvEIAXl/gDIVGaijR7Ekyg2oz5/ksAl+rwsOGw5DuxYpMMSYm+QOXT/eKP4HqM\nfkqttmaeJBwpADOw6hCb/mSuSbOhR+hvNEB482Jt77u6EdkkMXzbJUb8GzIsfApk\nlQIDAQAB\n-----END PUBLIC KEY-----\n"}
        }),
    );
    v["signed"]["roles"]["targets"]["keyids"] = serde_json::json!(["ecdsa-key", "rsa-key"]);
    v["signatures"] = serde_json::json!([
        {"keyid": "ecdsa-key", "sig": "3006020101020101"},
        {"keyid": "rsa-key", "sig": "00"}
    ]);
    write(
        m,
        "root-ecdsa-rsa-keys.json",
        &serde_json::to_vec(&v).expect("json"),
    );

    // trusted_set: flags byte, then root, timestamp, snapshot, targets, dev.
    let t = "trusted_set";
    let release = |r: &tagtrust_fuzz::Release| {
        [
            r.timestamp.clone(),
            r.snapshot.clone(),
            r.targets.clone(),
            r.dev.clone(),
        ]
    };
    let seed = |flags: u8, root: &[u8], files: &[Vec<u8>], extra: &[&[u8]]| {
        let mut all: Vec<&[u8]> = vec![root];
        all.extend(files.iter().map(Vec::as_slice));
        all.extend_from_slice(extra);
        join(flags, &all)
    };
    write(t, "release1", &seed(0, b"", &release(r1), &[]));
    write(
        t,
        "root2-release2",
        &seed(0, &repo.root2, &release(r2), &[]),
    );
    write(
        t,
        "root2-release2-local-release1",
        &seed(3, &repo.root2, &release(r2), &[]),
    );
    write(t, "start-root2-release3", &seed(16, b"", &release(r3), &[]));
    write(
        t,
        "rollback-release1-after-local",
        &seed(3, b"", &release(r1), &[]),
    );
    write(
        t,
        "expired",
        &seed(
            16,
            b"",
            &[
                repo.expired_timestamp.clone(),
                repo.expired_snapshot.clone(),
                r3.targets.clone(),
            ],
            &[],
        ),
    );
    write(
        t,
        "trusted-snapshot-named-delegation",
        &seed(4 | 8, b"", &release(r1), &[b"dev\ntargets"]),
    );
    write(
        t,
        "mix-release1-release2",
        &seed(
            0,
            &repo.root2,
            &[
                r2.timestamp.clone(),
                r1.snapshot.clone(),
                r2.targets.clone(),
                r1.dev.clone(),
            ],
            &[],
        ),
    );

    // publish_input: flags byte (bit 0: repository at release 1), then
    // `filename\nbytes` per uploaded part.
    let p = "publish_input";
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let publishes: [(&str, u8, &[Part]); 8] = [
        (
            "first-publish",
            0,
            &[
                ("root.json", &repo.root1),
                ("targets.json", &r1.targets),
                ("dev.json", &r1.dev),
            ],
        ),
        (
            "rotate-root-and-release2",
            1,
            &[
                ("root.json", &repo.root2),
                ("targets.json", &r2.targets),
                ("dev", &r2.dev),
            ],
        ),
        ("targets-only", 1, &[("targets.json", &r2.targets)]),
        ("delegated-only", 1, &[("dev.json", &r2.dev)]),
        (
            "succinct-first-publish",
            0,
            &[
                ("root.json", &repo.root1),
                ("targets.json", &repo.succinct_targets),
            ],
        ),
        (
            "hostile-names",
            1,
            &[
                ("timestamp.json", &r2.timestamp),
                ("../x", b"{}"),
                (".json", b"{}"),
                ("a%2Fb", b"{}"),
            ],
        ),
        (
            "duplicate-role",
            1,
            &[("targets.json", &r2.targets), ("targets", &r2.targets)],
        ),
        ("too-deep", 0, &[("targets.json", deep.as_bytes())]),
    ];
    for (name, flags, parts) in publishes {
        let parts: Vec<Vec<u8>> = parts
            .iter()
            .map(|(file, bytes)| named(file, bytes))
            .collect();
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        write(p, name, &join(flags, &parts));
    }

    // names: GUNs, references, tags, role names, `pattern\ntarget`.
    let n = "names";
    for (name, text) in [
        ("gun-host-port", "localhost:5000/acme/app"),
        ("gun-registry", "registry.example.com/acme/heavylifter"),
        ("ref-port", "localhost:5000/acme/app:1.5"),
        ("ref-short", "app:latest"),
        ("ref-digest", "app@sha256:00"),
        ("dotdot", "a/../b"),
        ("encoded-slash", "a%2Fb:latest"),
        ("glob-star", "release-*\nrelease-1.5"),
        ("glob-segments", "a/*/c\na/b/c"),
        ("glob-class", "[!a-c]?\nd1"),
        ("glob-invalid", "[\n["),
        ("bins", "\u{20}bin\nlatest"),
        ("role-name", "ci-robot"),
    ] {
        write(n, name, text.as_bytes());
    }
}
