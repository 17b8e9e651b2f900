//! Direct tests of the publish core.

use super::*;

#[test]
fn depth_check_ignores_brackets_in_strings() {
    assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[[[["}"#, 2));
    assert!(json_depth_exceeds(b"[[[1]]]", 2));
    assert!(!json_depth_exceeds(b"[[1],[2]]", 2));
    assert!(!json_depth_exceeds(br#"{"a\"[[[":1}"#, 1));
}

#[test]
fn filenames() {
    assert_eq!(role_from_filename("targets.json").unwrap(), "targets");
    assert_eq!(role_from_filename("ci-robot").unwrap(), "ci-robot");
    for bad in ["timestamp", "snapshot.json", "../x", "", ".json", "a/b"] {
        assert!(role_from_filename(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn versions() {
    check_version("targets", 1, None).unwrap();
    check_version("targets", 3, Some(2)).unwrap();
    assert!(matches!(
        check_version("targets", 2, Some(2)),
        Err(Refusal::Conflict {
            current_version: 2,
            ..
        })
    ));
    assert!(matches!(
        check_version("targets", 4, Some(2)),
        Err(Refusal::Invalid {
            check: Check::Version {
                current: 2,
                uploaded: 4
            },
            ..
        })
    ));
}
