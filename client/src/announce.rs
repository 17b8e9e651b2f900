//! The words of notices about the circumstances of an operation rather
//! than its result (an offline read, roles re-signed on the way), so every
//! front end says them alike. Callers hand them to their [`Notices`].
//!
//! [`Notices`]: crate::notices::Notices

use tagtrust_shared::Gun;

/// Said before an offline lookup or pull: nothing is fetched.
pub fn offline(gun: &Gun) -> String {
    format!("offline: using only the local trusted metadata of {gun}")
}

/// Said after a publish that also re-signed `roles` (locally held roles
/// about to expire); nothing when there were none.
pub fn resigned(roles: &[String]) -> Option<String> {
    (!roles.is_empty()).then(|| {
        format!(
            "also re-signed {} (expiring within the warning window)",
            roles.join(" and ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_names_the_gun() {
        let gun = Gun::parse("registry.example/acme/app").unwrap();
        assert_eq!(
            offline(&gun),
            "offline: using only the local trusted metadata of registry.example/acme/app"
        );
    }

    #[test]
    fn resigned_lists_the_roles_or_says_nothing() {
        assert_eq!(resigned(&[]), None);
        assert_eq!(
            resigned(&["root".into()]).as_deref(),
            Some("also re-signed root (expiring within the warning window)")
        );
        assert_eq!(
            resigned(&["root".into(), "targets".into()]).as_deref(),
            Some("also re-signed root and targets (expiring within the warning window)")
        );
    }
}
