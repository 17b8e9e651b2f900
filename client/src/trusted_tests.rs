//! The trust state machine against a simulated repository: every named
//! attack refused, and the workflow accepted when it is honest.

use crate::trusted::*;
use chrono::{DateTime, Duration, Utc};
use tagtrust_shared::SigningKey;
use tagtrust_shared::{MetaFile, Targets, Timestamp};
use tagtrust_simulator::{assert_refused, dup, sign, tampered, target_file, RepositorySimulator};

fn trusted_at(repo: &RepositorySimulator, version: u64) -> TrustedMetadataSet {
    let [ts, snap, targets, dev] = repo.release(version);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    for r in &repo.roots[1..] {
        set.update_root(r).unwrap();
    }
    assert_eq!(set.update_timestamp(&ts).unwrap(), TimestampUpdate::Updated);
    set.update_snapshot(&snap, false).unwrap();
    set.update_targets(&targets).unwrap();
    set.update_delegated_targets(&dev, "dev", "targets")
        .unwrap();
    set
}

/// Targets version 1 listing `x`, expiring at `expires`, signed by `key`.
fn targets_listing_x(expires: DateTime<Utc>, key: &SigningKey) -> Vec<u8> {
    let mut t = Targets::new(1, expires);
    t.targets.insert("x".into(), target_file(b"x"));
    sign(t, &[key])
}

/// A set that trusts `repo`'s root, and a timestamp and snapshot (version
/// 1) listing `targets` as targets version 1.
fn trusting_snapshot_of(repo: &RepositorySimulator, targets: &[u8]) -> TrustedMetadataSet {
    let snap = repo.snapshot(1, &[("targets", targets, 1)]);
    let ts = repo.timestamp(1, &snap, 1);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.update_timestamp(&ts).unwrap();
    set.update_snapshot(&snap, false).unwrap();
    set
}

#[test]
fn full_workflow_accepts_a_consistent_repository() {
    let repo = RepositorySimulator::new();
    let set = trusted_at(&repo, 1);
    assert_eq!(set.timestamp().unwrap().signed.version, 1);
    assert!(set
        .delegated_targets("dev")
        .unwrap()
        .signed
        .targets
        .contains_key("apps/app"));
}

#[test]
fn root_chain_requires_old_and_new_signatures_and_next_version() {
    let mut repo = RepositorySimulator::new();
    let new_key = SigningKey::generate();
    let v2 = repo.rotate_root(|root, repo| {
        root.roles.get_mut("root").unwrap().keyids.clear();
        root.add_key("root", new_key.public_key());
        repo.root_keys.push(dup(&new_key));
    });
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.update_root(&v2).unwrap();
    assert_eq!(set.root().signed.version, 2);

    // v3 signed only by a key the trusted root v2 does not list: refused.
    let stranger = SigningKey::generate();
    let mut r3 = repo.root.clone();
    r3.version = 3;
    let bad = sign(r3.clone(), &[&stranger]);
    let err = set.update_root(&bad).unwrap_err().to_string();
    assert!(err.starts_with("arbitrary metadata refused: 3.root.json checked against the keys of trusted root version 2"), "{err}");

    // Signed by the old root's keys but not by the new root's own keys.
    let mut r3b = r3.clone();
    r3b.roles.get_mut("root").unwrap().keyids = vec![stranger.key_id()];
    r3b.keys.insert(stranger.key_id(), stranger.public_key());
    let only_old = sign(r3b, &[&new_key]);
    let err = set.update_root(&only_old).unwrap_err().to_string();
    assert!(err.contains("checked against its own keys"), "{err}");

    // Version skip (v4 where v3 is expected).
    let mut r4 = repo.root.clone();
    r4.version = 4;
    let skip = sign(r4, &[&new_key]);
    assert_refused!(
        set.update_root(&skip),
        TrustError::RootVersion {
            expected: 3,
            found: 4,
            ..
        }
    );
    // A replay of v2 is refused the same way.
    assert_refused!(set.update_root(&v2), TrustError::RootVersion { .. });
}

#[test]
fn expired_intermediate_root_is_fine_but_expired_final_root_is_a_freeze() {
    let mut repo = RepositorySimulator::new();
    let now = repo.now;
    // Root v1 expired: still a valid start of the chain.
    repo.root.expires = tagtrust_shared::metadata::whole_seconds(now - Duration::days(1));
    repo.roots[0] = sign(repo.root.clone(), &[&repo.root_keys[0]]);
    let v2 = repo.rotate_root(|root, _| {
        root.expires = tagtrust_shared::metadata::whole_seconds(now + Duration::days(1))
    });
    let [ts, ..] = repo.release(1);

    let mut set = TrustedMetadataSet::new(&repo.roots[0], now).unwrap();
    let err = set.clone().update_timestamp(&ts).unwrap_err().to_string();
    assert!(
        err.starts_with("freeze attack refused: root expired at"),
        "{err}"
    );
    set.update_root(&v2).unwrap();
    set.update_timestamp(&ts).unwrap();
}

#[test]
fn timestamp_rollback_and_equal_versions() {
    let repo = RepositorySimulator::new();
    let mut set = trusted_at(&repo, 5);
    let ts5 = set.timestamp().unwrap().to_bytes();
    // Next run: local timestamp v5 is the rollback memory.
    let mut next = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    next.load_local_timestamp(&ts5).unwrap();
    let [ts3, ..] = repo.release(3);
    let err = next.update_timestamp(&ts3).unwrap_err().to_string();
    assert_eq!(
        err,
        "rollback attack refused: timestamp version 3 is older than trusted version 5"
    );
    assert_eq!(
        next.update_timestamp(&ts5).unwrap(),
        TimestampUpdate::Unchanged
    );

    // Timestamp v6 pointing at an older snapshot version.
    let [_, snap4, ..] = repo.release(4);
    let ts6 = repo.timestamp(6, &snap4, 4);
    assert_refused!(
        next.update_timestamp(&ts6),
        TrustError::MetaRollback {
            new: 4,
            trusted: 5,
            ..
        }
    );
    // Out of order use is refused.
    assert_refused!(set.update_timestamp(&ts5), TrustError::Order(_));
}

#[test]
fn expired_timestamp_is_a_freeze_but_still_guards_rollback() {
    let repo = RepositorySimulator::new();
    let [_, snap, ..] = repo.release(2);
    let mut ts = Timestamp::new(
        7,
        repo.now - Duration::hours(1),
        MetaFile::describing(2, &snap),
    );
    let expired = sign(ts.clone(), &[&repo.timestamp_key]);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    let err = set.load_local_timestamp(&expired).unwrap_err().to_string();
    assert!(
        err.starts_with("freeze attack refused: timestamp expired at"),
        "{err}"
    );
    // The expired v7 still refuses an older v6...
    ts.version = 6;
    ts.expires = repo.expires();
    let older = sign(ts.clone(), &[&repo.timestamp_key]);
    assert_refused!(set.update_timestamp(&older), TrustError::Rollback { .. });
    // ...and snapshot cannot be loaded while the trusted timestamp is expired.
    assert_refused!(
        set.update_snapshot(&snap, false),
        TrustError::Expired { .. }
    );
    ts.version = 8;
    let fresh = sign(ts, &[&repo.timestamp_key]);
    set.update_timestamp(&fresh).unwrap();
    set.update_snapshot(&snap, false).unwrap();
}

#[test]
fn unsigned_or_wrongly_signed_metadata_is_arbitrary() {
    let repo = RepositorySimulator::new();
    let [_, snap, ..] = repo.release(1);
    let ts = Timestamp::new(1, repo.expires(), MetaFile::describing(1, &snap));
    let by_snapshot_key = sign(ts, &[&repo.snapshot_key]);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    let err = set
        .update_timestamp(&by_snapshot_key)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "arbitrary metadata refused: timestamp is not signed by enough keys: 0 valid signature(s), threshold 1"
    );

    // Targets signed by the wrong key.
    let targets = targets_listing_x(repo.expires(), &repo.delegate_key);
    let mut set = trusting_snapshot_of(&repo, &targets);
    let err = set.update_targets(&targets).unwrap_err().to_string();
    assert!(
        err.starts_with("arbitrary metadata refused: targets is not signed by enough keys"),
        "{err}"
    );

    // Tampered bytes (signature no longer covers them).
    let [ts1, ..] = repo.release(1);
    let forged = tampered(&ts1, "\"version\":1", "\"version\":9");
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    assert_refused!(set.update_timestamp(&forged), TrustError::Signature { .. });
}

#[test]
fn snapshot_mix_and_match_rollback_and_removal() {
    let repo = RepositorySimulator::new();
    let [ts, snap, targets, dev] = repo.release(2);
    // Snapshot bytes not matching timestamp's hash.
    let other = repo.snapshot(2, &[("targets", &targets, 2)]);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.update_timestamp(&ts).unwrap();
    let err = set.update_snapshot(&other, false).unwrap_err().to_string();
    assert!(
        err.starts_with("mix-and-match refused: snapshot does not match its entry in timestamp"),
        "{err}"
    );

    // Snapshot of the wrong version (timestamp without hashes).
    let mut meta = MetaFile::describing(3, &snap);
    meta.hashes = None;
    meta.length = None;
    let ts_nohash = sign(
        Timestamp::new(2, repo.expires(), meta),
        &[&repo.timestamp_key],
    );
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.update_timestamp(&ts_nohash).unwrap();
    let err = set.update_snapshot(&snap, false).unwrap_err().to_string();
    assert_eq!(
        err,
        "mix-and-match refused: snapshot version 2 does not match version 3 in timestamp"
    );

    // A later run: local timestamp and snapshot v2 list dev v2; the
    // remote v3 snapshot lists dev v1 or drops dev.
    for (bad, expect) in [
        (
            repo.snapshot(3, &[("targets", &targets, 3), ("dev", &dev, 1)]),
            "dev.json version 1, older than trusted version 2",
        ),
        (
            repo.snapshot(3, &[("targets", &targets, 3)]),
            "no longer lists dev.json",
        ),
        (
            repo.snapshot(1, &[("targets", &targets, 3), ("dev", &dev, 3)]),
            "snapshot version 1 is older than trusted version 2",
        ),
    ] {
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.load_local_timestamp(&ts).unwrap();
        let ts3 = repo.timestamp(3, &bad, 3);
        set.update_timestamp(&ts3).unwrap();
        // Not final (timestamp names another version), but kept as rollback memory.
        assert!(set.load_local_snapshot(&snap).is_err());
        let err = set.update_snapshot(&bad, false).unwrap_err().to_string();
        assert!(err.starts_with("rollback attack refused"), "{err}");
        assert!(err.contains(expect), "{err}");
    }
}

#[test]
fn targets_must_match_snapshot_and_delegator() {
    let repo = RepositorySimulator::new();
    let [ts, snap, targets, dev] = repo.release(1);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.update_timestamp(&ts).unwrap();
    set.update_snapshot(&snap, false).unwrap();
    // Targets from another release: hash mismatch.
    let targets2 = repo.targets(2);
    let err = set.update_targets(&targets2).unwrap_err().to_string();
    assert!(
        err.starts_with("mix-and-match refused: targets does not match its entry in snapshot"),
        "{err}"
    );
    // Delegated role before its delegator.
    assert_refused!(
        set.update_delegated_targets(&dev, "dev", "targets"),
        TrustError::Order(_)
    );
    set.update_targets(&targets).unwrap();
    // Delegated role signed by the targets key instead of the delegated key.
    let forged = repo.delegated(1, &repo.targets_key);
    let forged_snap = repo.snapshot(1, &[("targets", &targets, 1), ("dev", &forged, 1)]);
    let forged_ts = repo.timestamp(1, &forged_snap, 1);
    let mut set2 = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set2.update_timestamp(&forged_ts).unwrap();
    set2.update_snapshot(&forged_snap, false).unwrap();
    set2.update_targets(&targets).unwrap();
    let err = set2
        .update_delegated_targets(&forged, "dev", "targets")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("arbitrary metadata refused: dev (delegated by targets): dev is not signed by enough keys"), "{err}");
    // A role the delegator does not delegate to.
    let err = set
        .update_delegated_targets(&dev, "ops", "targets")
        .unwrap_err();
    assert!(matches!(err, TrustError::MixAndMatch(_)), "{err}");
    set.update_delegated_targets(&dev, "dev", "targets")
        .unwrap();
}

#[test]
fn expired_targets_is_a_freeze() {
    let repo = RepositorySimulator::new();
    let targets = targets_listing_x(repo.now - Duration::seconds(1), &repo.targets_key);
    let mut set = trusting_snapshot_of(&repo, &targets);
    let err = set.update_targets(&targets).unwrap_err().to_string();
    assert!(
        err.starts_with("freeze attack refused: targets expired at"),
        "{err}"
    );
}

#[test]
fn fast_forward_recovery_after_timestamp_key_rotation() {
    let mut repo = RepositorySimulator::new();
    // An attacker with the timestamp key fast-forwarded the client to v1000.
    let [_, snap, ..] = repo.release(1);
    let ff = repo.timestamp(1000, &snap, 1);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.load_local_timestamp(&ff).unwrap();
    // Without a key rotation the honest v2 looks like a rollback.
    let [ts2, snap2, ..] = repo.release(2);
    assert_refused!(set.update_timestamp(&ts2), TrustError::Rollback { .. });

    // The repository rotates the timestamp key in root v2.
    let new_ts_key = SigningKey::generate();
    let v2 = repo.rotate_root(|root, repo| {
        let old = repo.timestamp_key.key_id();
        root.keys.remove(&old);
        root.roles.get_mut("timestamp").unwrap().keyids = vec![];
        root.add_key("timestamp", new_ts_key.public_key());
        repo.timestamp_key = dup(&new_ts_key);
    });
    let ts2 = repo.timestamp(2, &snap2, 2);
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.update_root(&v2).unwrap();
    assert!(set.timestamp_or_snapshot_keys_rotated());
    let err = set.load_local_timestamp(&ff).unwrap_err().to_string();
    assert!(err.starts_with("fast-forward attack recovery"), "{err}");
    set.update_timestamp(&ts2).unwrap();
    set.update_snapshot(&snap2, false).unwrap();
}

#[test]
fn fast_forward_recovery_after_snapshot_key_rotation() {
    let mut repo = RepositorySimulator::new();
    let [ts1, snap1, ..] = repo.release(1);
    let new_snap_key = SigningKey::generate();
    let v2 = repo.rotate_root(|root, repo| {
        root.roles.get_mut("snapshot").unwrap().keyids = vec![];
        root.add_key("snapshot", new_snap_key.public_key());
        repo.snapshot_key = dup(&new_snap_key);
    });
    let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    set.update_root(&v2).unwrap();
    assert!(set.timestamp_or_snapshot_keys_rotated());
    assert_refused!(
        set.load_local_timestamp(&ts1),
        TrustError::FastForwardRecovery { .. }
    );
    assert!(set.timestamp().is_none());
    assert_refused!(
        set.load_local_snapshot(&snap1),
        TrustError::FastForwardRecovery { .. }
    );
    // Unchanged keys: no rotation flagged, and the local files load.
    let mut plain = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
    assert!(!plain.timestamp_or_snapshot_keys_rotated());
    plain.load_local_timestamp(&ts1).unwrap();
    plain.load_local_snapshot(&snap1).unwrap();
}

#[test]
fn untrusted_start_root_is_refused() {
    let repo = RepositorySimulator::new();
    let stranger = SigningKey::generate();
    let bytes = sign(repo.root.clone(), &[&stranger]);
    assert_refused!(
        TrustedMetadataSet::new(&bytes, repo.now),
        TrustError::Signature { .. }
    );
    assert_refused!(
        TrustedMetadataSet::new(b"{}", repo.now),
        TrustError::Invalid { .. }
    );
}
