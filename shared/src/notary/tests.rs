//! The dialect against files the real notary 0.7 CLI and notary-server
//! wrote (docs/notary-samples, captured on this machine's Debian binaries):
//! they must verify exactly as Notary verifies them, and any change to
//! them must not.

use super::*;
use chrono::{TimeZone, Utc};

const GUN: &str = "example.com/acme/app";

fn sample(name: &str) -> NotarySigned {
    NotarySigned::from_bytes(&sample_bytes(name)).unwrap()
}

fn sample_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../docs/notary-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn root() -> NotaryRoot {
    let root: NotaryRoot = sample("root.json").parse("Root").unwrap();
    root.check().unwrap();
    root
}

/// Verify `file` as top-level `role` of `root`.
fn verify_as(root: &NotaryRoot, file: &NotarySigned, role: &str) -> crate::error::Result<()> {
    let keys = root.role_keys(role).unwrap();
    file.verify(role, &root.keys, &keys.keyids, keys.threshold)
}

#[test]
fn every_top_level_role_the_notary_cli_and_server_wrote_verifies() {
    let root = root();
    // root (ecdsa-x509, ecdsa), targets (ecdsa), snapshot (ecdsa),
    // timestamp (the server's ed25519, eddsa).
    for (file, role) in [
        ("root.json", "root"),
        ("targets.json", "targets"),
        ("snapshot.json", "snapshot"),
        ("timestamp.json", "timestamp"),
    ] {
        verify_as(&root, &sample(file), role).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // notary-signer's ECDSA timestamp, under the root that lists its key.
    let signer_root: NotaryRoot = sample("root-signer.json").parse("Root").unwrap();
    verify_as(
        &signer_root,
        &sample("timestamp-ecdsa-signer.json"),
        "timestamp",
    )
    .unwrap();
    // A role signed by another role's key is not that role.
    assert!(matches!(
        verify_as(&root, &sample("targets.json"), "snapshot"),
        Err(crate::Error::Threshold { .. })
    ));
}

#[test]
fn a_delegation_verifies_under_its_parents_x509_delegation_key() {
    let parent: NotaryTargets = sample("targets-with-delegation.json")
        .parse("Targets")
        .unwrap();
    let delegation = &parent.delegations.roles[0];
    assert_eq!(delegation.name, "targets/releases");
    assert!(is_delegation_name(&delegation.name));
    sample("targets-releases.json")
        .verify(
            &delegation.name,
            &parent.delegations.keys,
            &delegation.keyids,
            delegation.threshold,
        )
        .unwrap();
}

#[test]
fn a_rotated_root_is_signed_by_the_old_root_keys_and_its_own() {
    let old = root();
    let rotated_file = sample("root-rotated.json");
    let rotated: NotaryRoot = rotated_file.parse("Root").unwrap();
    rotated.check().unwrap();
    verify_as(&old, &rotated_file, "root").unwrap();
    verify_as(&rotated, &rotated_file, "root").unwrap();
}

#[test]
fn any_change_to_signed_content_breaks_the_signature() {
    let root = root();
    let mut targets = sample("targets.json");
    let first = targets.signed["targets"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    first["length"] = (first["length"].as_u64().unwrap() + 1).into();
    assert!(matches!(
        verify_as(&root, &targets, "targets"),
        Err(crate::Error::Threshold { .. })
    ));
    // A forged signature value.
    let mut forged = sample("targets.json");
    forged.signatures[0].sig = BASE64.encode([7u8; 64]);
    assert!(verify_as(&root, &forged, "targets").is_err());
}

#[test]
fn a_key_listed_under_another_keys_id_is_refused() {
    let mut root = root();
    let targets_id = root.role_keys("targets").unwrap().keyids[0].clone();
    let snapshot_id = root.role_keys("snapshot").unwrap().keyids[0].clone();
    let snapshot_key = root.keys[&snapshot_id].clone();
    root.keys.insert(targets_id, snapshot_key);
    let err = verify_as(&root, &sample("targets.json"), "targets").unwrap_err();
    assert!(err.to_string().contains("another key's ID"), "{err}");
}

#[test]
fn snapshot_and_timestamp_meta_name_the_exact_bytes() {
    let snapshot: NotarySnapshot = sample("snapshot.json").parse("Snapshot").unwrap();
    for (role, file) in [("root", "root.json"), ("targets", "targets.json")] {
        let meta = &snapshot.meta[role];
        check_file_meta(meta, role).unwrap();
        assert!(file_meta_matches(meta, &sample_bytes(file)), "{role}");
        assert_eq!(meta.length, sample_bytes(file).len() as u64);
    }
    let timestamp: NotaryTimestamp = sample("timestamp.json").parse("Timestamp").unwrap();
    assert!(file_meta_matches(
        &timestamp.meta["snapshot"],
        &sample_bytes("snapshot.json")
    ));
    let mut changed = sample_bytes("snapshot.json");
    changed.push(b' ');
    assert!(!file_meta_matches(&timestamp.meta["snapshot"], &changed));
    // A file of the wrong _type is refused.
    assert!(matches!(
        sample("snapshot.json").parse::<NotaryTimestamp>("Timestamp"),
        Err(crate::Error::WrongType { .. })
    ));
}

#[test]
fn root_certificates_must_name_the_gun_and_be_valid_now() {
    let root = root();
    let id = &root.role_keys("root").unwrap().keyids[0];
    let key = &root.keys[id];
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
    check_root_certificate(id, key, GUN, now, true).unwrap();
    assert!(matches!(
        check_root_certificate(id, key, "example.com/acme/other", now, true),
        Err(CertificateError::WrongName { .. })
    ));
    let later = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
    assert!(matches!(
        check_root_certificate(id, key, GUN, later, true),
        Err(CertificateError::NotValidNow { .. })
    ));
    // The previous root of a rotation is not checked for expiry.
    check_root_certificate(id, key, GUN, later, false).unwrap();
    let targets_id = &root.role_keys("targets").unwrap().keyids[0];
    assert!(matches!(
        check_root_certificate(targets_id, &root.keys[targets_id], GUN, now, true),
        Err(CertificateError::NotACertificate { .. })
    ));
}

#[test]
fn what_notary_cannot_sign_is_refused_before_verifying() {
    for bad in [
        serde_json::json!({"a": "tab\there"}),
        serde_json::json!({"a\u{1}": 1}),
        serde_json::json!({"n": 9007199254740993u64}),
        serde_json::json!({"n": 1.5}),
        // Two keys one after NFC (KELVIN SIGN is K): one would ride along unsigned.
        serde_json::json!({"K1": "forged", "\u{212a}1": "signed"}),
    ] {
        assert!(signed_bytes(&bad).is_err(), "{bad}");
    }
    let fine = serde_json::json!({"n": 9007199254740992u64, "m": -3, "s": "é<>&\u{2028}"});
    assert_eq!(
        signed_bytes(&fine).unwrap(),
        "{\"m\":-3,\"n\":9007199254740992,\"s\":\"é<>&\u{2028}\"}".as_bytes()
    );
}

#[test]
fn nil_slices_and_maps_that_go_writes_as_null_read_as_empty() {
    let signed = serde_json::json!({
        "_type": "Targets", "version": 3, "expires": "2030-01-01T00:00:00.5Z",
        "targets": null, "delegations": {"keys": null, "roles": null},
    });
    let file = NotarySigned {
        signed,
        signatures: vec![],
    };
    let targets: NotaryTargets = file.parse("Targets").unwrap();
    assert!(targets.targets.is_empty() && targets.delegations.roles.is_empty());
}

#[test]
fn a_server_p256_key_signs_what_notary_verifies_as_ecdsa() {
    let key = crate::P256SigningKey::generate();
    let notary = NotaryKey::from_public_key(&key.public_key()).unwrap();
    assert_eq!(notary.keytype, "ecdsa");
    assert_eq!(notary.method(), "ecdsa");
    let public = notary.to_public_key("ecdsa").unwrap();
    assert!(public.same_key(&key.public_key()));
    let signature = key.sign(b"signed bytes");
    assert!(public
        .verify(b"signed bytes", &hex::encode(signature))
        .unwrap());
    assert!(!public
        .verify(b"other bytes", &hex::encode(signature))
        .unwrap());
    let again = crate::P256SigningKey::from_secret(&key.secret()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    // And ed25519 keys, as Notary lists them.
    let ed = crate::SigningKey::generate().public_key();
    let listed = NotaryKey::from_public_key(&ed).unwrap();
    assert_eq!(listed.to_public_key("eddsa").unwrap(), ed);
}
