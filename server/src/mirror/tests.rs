//! The import core against a simulated upstream: an honest history is
//! accepted whole or in increments, and each way a hostile or broken
//! upstream can differ is refused by name.

use super::*;
use tagtrust_shared::SigningKey;
use tagtrust_simulator::{assert_refused, sign, RepositorySimulator, DELEGATED_ROLE};

/// Every file of releases 1..=`releases` of `repo`, plus its roots.
fn history(repo: &RepositorySimulator, releases: u64) -> Vec<Offered> {
    let mut files = roots(repo);
    for version in 1..=releases {
        let [timestamp, snapshot, targets, dev] = repo.release(version);
        for (role, bytes) in [
            ("timestamp", timestamp),
            ("snapshot", snapshot),
            ("targets", targets),
            (DELEGATED_ROLE, dev),
        ] {
            files.push(offered(role, version, bytes));
        }
    }
    files
}

fn roots(repo: &RepositorySimulator) -> Vec<Offered> {
    repo.roots
        .iter()
        .enumerate()
        .map(|(i, bytes)| offered("root", i as u64 + 1, bytes.clone()))
        .collect()
}

fn offered(role: &str, version: u64, bytes: Vec<u8>) -> Offered {
    Offered {
        role: role.into(),
        version,
        bytes,
    }
}

/// What a server holds after storing `files`, as the route reads it.
fn held(files: &[Offered]) -> Held {
    Held::new(
        false,
        files
            .iter()
            .map(|f| (f.role.clone(), f.version, sha256_hex(&f.bytes))),
        files
            .iter()
            .map(|f| (f.role.clone(), f.version, f.bytes.clone())),
    )
}

/// Where version `version` of `role` is in `offer`.
fn index_of(offer: &[Offered], role: &str, version: u64) -> usize {
    offer
        .iter()
        .position(|f| f.role == role && f.version == version)
        .unwrap_or_else(|| panic!("{version}.{role}.json is offered"))
}

/// `offer` imported by a server that holds nothing of the GUN.
fn import_into_nothing(
    offer: Vec<Offered>,
    repo: &RepositorySimulator,
) -> Result<ImportPlan, ImportRefusal> {
    import(&Held::default(), offer, repo)
}

fn import(
    held: &Held,
    offer: Vec<Offered>,
    repo: &RepositorySimulator,
) -> Result<ImportPlan, ImportRefusal> {
    plan_import(held, offer, repo.now)
}

fn names(plan: &ImportPlan) -> Vec<String> {
    plan.store
        .iter()
        .map(|f| file_name(&f.role, f.version))
        .collect()
}

#[test]
fn a_whole_history_is_accepted_and_stored_roots_first_timestamps_last() {
    let repo = RepositorySimulator::new();
    let plan = import_into_nothing(history(&repo, 2), &repo).unwrap();
    assert_eq!(plan.timestamp_version, 2);
    assert_eq!(
        names(&plan),
        [
            "1.root.json",
            "1.dev.json",
            "1.targets.json",
            "2.dev.json",
            "2.targets.json",
            "1.snapshot.json",
            "2.snapshot.json",
            "1.timestamp.json",
            "2.timestamp.json"
        ]
    );
}

#[test]
fn an_increment_is_verified_against_what_is_held() {
    let repo = RepositorySimulator::new();
    let all = history(&repo, 3);
    let (old, new): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|f| f.version < 3 || f.role == "root");
    let plan = import(&held(&old), new, &repo).unwrap();
    assert_eq!(plan.timestamp_version, 3);
    assert_eq!(plan.store.len(), 4);
    // What is held already comes back identical and is not stored again.
    let plan = import(&held(&old), history(&repo, 2), &repo).unwrap();
    assert!(plan.store.is_empty());
    assert!(import(&held(&old), Vec::new(), &repo)
        .unwrap()
        .store
        .is_empty());
}

#[test]
fn a_root_rotation_in_the_history_is_followed() {
    let mut repo = RepositorySimulator::new();
    let mut files = history(&repo, 1);
    repo.rotate_role_key("timestamp", SigningKey::generate());
    files.push(offered("root", 2, repo.roots[1].clone()));
    let [timestamp, snapshot, targets, dev] = repo.release(2);
    files.extend([
        offered("timestamp", 2, timestamp),
        offered("snapshot", 2, snapshot),
        offered("targets", 2, targets),
        offered(DELEGATED_ROLE, 2, dev),
    ]);
    // The past timestamp 1 is signed by the old key, under root 1.
    let plan = import_into_nothing(files, &repo).unwrap();
    assert_eq!(plan.timestamp_version, 2);
}

#[test]
fn a_hosted_repository_is_never_replaced() {
    let repo = RepositorySimulator::new();
    let hosted = Held {
        hosted: true,
        ..Held::default()
    };
    assert_refused!(
        import(&hosted, history(&repo, 1), &repo),
        ImportRefusal::Hosted
    );
}

#[test]
fn a_changed_past_version_is_refused() {
    let repo = RepositorySimulator::new();
    let old = history(&repo, 1);
    let mut offer = history(&repo, 2);
    let other = RepositorySimulator::new();
    let i = index_of(&offer, "targets", 1);
    offer[i].bytes = other.targets(1);
    assert_refused!(
        import(&held(&old), offer, &repo),
        ImportRefusal::ChangedPastVersion { file } if file == "1.targets.json"
    );
}

#[test]
fn offering_only_older_timestamps_than_held_is_a_rollback() {
    let repo = RepositorySimulator::new();
    let all = history(&repo, 3);
    let (two, rest): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|f| f.role == "timestamp" && f.version == 2);
    assert_refused!(
        import(&held(&rest), two, &repo),
        ImportRefusal::RolledBack {
            held: 3,
            offered: 2,
            ..
        }
    );
}

#[test]
fn a_forged_signature_is_refused() {
    let repo = RepositorySimulator::new();
    let mut offer = history(&repo, 1);
    let i = index_of(&offer, DELEGATED_ROLE, 1);
    offer[i].bytes = repo.delegated(1, &SigningKey::generate());
    // The forged file no longer matches the snapshot's hash either; both
    // are refusals of that file.
    assert_refused!(
        import_into_nothing(offer, &repo),
        ImportRefusal::Untrusted { file, .. } if file == "1.dev.json"
    );
}

#[test]
fn a_past_version_signed_by_a_stranger_is_refused() {
    let repo = RepositorySimulator::new();
    let mut offer = history(&repo, 2);
    let i = index_of(&offer, "timestamp", 1);
    let mut forged =
        tagtrust_shared::Metadata::<tagtrust_shared::Timestamp>::from_bytes(&offer[i].bytes)
            .unwrap()
            .signed;
    forged.version = 1;
    offer[i].bytes = sign(forged, &[&SigningKey::generate()]);
    assert_refused!(
        import_into_nothing(offer, &repo),
        ImportRefusal::UnsignedPastVersion { file, .. } if file == "1.timestamp.json"
    );
}

#[test]
fn a_file_must_be_what_its_name_says() {
    let repo = RepositorySimulator::new();
    let mut offer = history(&repo, 1);
    let targets = offer
        .iter()
        .find(|f| f.role == "targets")
        .unwrap()
        .bytes
        .clone();
    offer.push(offered("targets", 2, targets.clone()));
    assert_refused!(
        import_into_nothing(offer.clone(), &repo),
        ImportRefusal::Misnamed { file, .. } if file == "2.targets.json"
    );
    offer.pop();
    offer.push(offered("snapshot", 1, targets));
    assert_refused!(
        import_into_nothing(offer, &repo),
        ImportRefusal::Misnamed { .. } | ImportRefusal::Duplicate { .. }
    );
    let mut truncated = history(&repo, 1);
    truncated[1].bytes.truncate(20);
    assert_refused!(
        import_into_nothing(truncated, &repo),
        ImportRefusal::Misnamed { .. }
    );
}

#[test]
fn a_gap_in_the_root_chain_is_refused() {
    let mut repo = RepositorySimulator::new();
    repo.rotate_root(|_, _| {});
    repo.rotate_root(|_, _| {});
    let offer: Vec<Offered> = history(&repo, 1)
        .into_iter()
        .filter(|f| !(f.role == "root" && f.version == 2))
        .collect();
    assert_refused!(
        import_into_nothing(offer, &repo),
        ImportRefusal::Missing { file } if file == "2.root.json"
    );
}

#[test]
fn a_version_beyond_what_the_snapshot_lists_is_refused() {
    let repo = RepositorySimulator::new();
    let mut offer = history(&repo, 1);
    offer.push(offered("targets", 2, repo.targets(2)));
    assert_refused!(
        import_into_nothing(offer, &repo),
        ImportRefusal::Unreferenced { file } if file == "2.targets.json"
    );
}

#[test]
fn an_expired_upstream_is_refused_as_a_consumer_would_refuse_it() {
    let repo = RepositorySimulator::new();
    let later = repo.expires() + chrono::Duration::hours(1);
    assert_refused!(
        plan_import(&Held::default(), history(&repo, 1), later),
        ImportRefusal::Untrusted { source, .. } if matches!(*source, TrustError::Expired { .. })
    );
}
