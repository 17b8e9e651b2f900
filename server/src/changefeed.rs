//! The changefeed: what mirrors follow. One record per committed change of
//! a repository (a new timestamp, from a publish, a re-sign or a key
//! rotation; or the repository's deletion), in Notary v1's JSON shape so
//! existing Notary tooling reads it.
//!
//! This module holds the domain: the query a follower sends (`change_id`,
//! `records`), parsed into a [`FeedQuery`] the way notary-server reads it,
//! and the records as answered. Storage runs the query
//! (`Storage::changes`); the route authorises and renders.

use serde::Serialize;

/// Records per page when the follower does not say (`records` absent or 0).
pub const DEFAULT_PAGE: u32 = 100;
/// The largest page answered; a larger `records` is answered with this many.
pub const MAX_PAGE: u32 = 1000;

/// Whether a record is a new timestamp or the end of the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeCategory {
    Update,
    Deletion,
}

impl ChangeCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCategory::Update => "update",
            ChangeCategory::Deletion => "deletion",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeCategory> {
        match text {
            "update" => Some(ChangeCategory::Update),
            "deletion" => Some(ChangeCategory::Deletion),
            _ => None,
        }
    }
}

/// One committed change, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub id: i64,
    pub gun: String,
    /// The new timestamp's version (0 for a deletion).
    pub version: u64,
    /// Hex SHA-256 of the new timestamp's bytes (empty for a deletion).
    pub sha256: String,
    pub category: ChangeCategory,
    /// Unix seconds.
    pub created_at: i64,
}

/// Where a page starts, from `change_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Records with a larger id, oldest first (`change_id` absent, 0 or a
    /// record's id with a positive `records`).
    After(i64),
    /// Records with a smaller id, newest first and then answered oldest
    /// first (a negative `records`).
    Before(i64),
    /// The newest records, answered oldest first (a negative `change_id`).
    Latest,
}

/// One page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedQuery {
    pub cursor: Cursor,
    /// At most this many records (1 ..= [`MAX_PAGE`]).
    pub limit: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeedQueryError {
    #[error("change_id must be an integer (a record's ID, 0 for the start, -1 for the end)")]
    ChangeId,
    #[error("records must be an integer (a page size; negative pages backwards)")]
    Records,
}

impl FeedQuery {
    /// Read `change_id` and `records` as notary-server does: an absent or
    /// 0 `change_id` is the start, a negative one the end; `records` 0 or
    /// absent is [`DEFAULT_PAGE`], a negative one pages backwards from the
    /// cursor; anything that is not an integer is refused.
    pub fn parse(change_id: Option<&str>, records: Option<&str>) -> Result<Self, FeedQueryError> {
        let id = match change_id.map(str::trim).filter(|s| !s.is_empty()) {
            None => 0,
            Some(text) => text.parse::<i64>().map_err(|_| FeedQueryError::ChangeId)?,
        };
        let records = match records.map(str::trim).filter(|s| !s.is_empty()) {
            None => 0,
            Some(text) => text.parse::<i64>().map_err(|_| FeedQueryError::Records)?,
        };
        let limit = match records.unsigned_abs() {
            0 => DEFAULT_PAGE,
            n => u32::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let cursor = if id < 0 {
            Cursor::Latest
        } else if records < 0 {
            if id == 0 {
                Cursor::Latest
            } else {
                Cursor::Before(id)
            }
        } else {
            Cursor::After(id)
        };
        Ok(FeedQuery { cursor, limit })
    }
}

/// Which repositories' records a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedScope {
    /// One repository's feed.
    Gun(String),
    /// Every repository whose name matches one of these patterns (`*`
    /// matches any run of characters, `/` included, as in token scopes).
    Matching(Vec<String>),
    /// Every repository.
    All,
}

/// A page as answered: Notary v1's `{"count", "records"}`.
#[derive(Debug, Serialize)]
pub struct FeedPage {
    pub count: usize,
    pub records: Vec<FeedRecord>,
}

/// One record in Notary v1's field names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FeedRecord {
    /// A string in Notary's shape; it is the cursor for the next poll.
    #[serde(rename = "ID")]
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    #[serde(rename = "GUN")]
    pub gun: String,
    pub version: u64,
    #[serde(rename = "SHA256")]
    pub sha256: String,
    pub category: &'static str,
}

impl FeedPage {
    pub fn new(records: Vec<ChangeRecord>) -> FeedPage {
        let records: Vec<FeedRecord> = records
            .into_iter()
            .map(|r| FeedRecord {
                id: r.id.to_string(),
                created_at: chrono::DateTime::from_timestamp(r.created_at, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                gun: r.gun,
                version: r.version,
                sha256: r.sha256,
                category: r.category.as_str(),
            })
            .collect();
        FeedPage {
            count: records.len(),
            records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(change_id: Option<&str>, records: Option<&str>) -> FeedQuery {
        FeedQuery::parse(change_id, records).unwrap()
    }

    #[test]
    fn cursors_and_pages_read_as_notary_reads_them() {
        let page = |cursor, limit| FeedQuery { cursor, limit };
        assert_eq!(query(None, None), page(Cursor::After(0), DEFAULT_PAGE));
        assert_eq!(query(Some(""), Some("0")), page(Cursor::After(0), 100));
        assert_eq!(query(Some("0"), Some("10")), page(Cursor::After(0), 10));
        assert_eq!(query(Some("42"), Some("5")), page(Cursor::After(42), 5));
        assert_eq!(query(Some("42"), Some("-5")), page(Cursor::Before(42), 5));
        assert_eq!(query(Some("-1"), Some("5")), page(Cursor::Latest, 5));
        assert_eq!(query(Some("-1"), Some("-5")), page(Cursor::Latest, 5));
        assert_eq!(query(Some("0"), Some("-5")), page(Cursor::Latest, 5));
        assert_eq!(query(None, Some("5000")), page(Cursor::After(0), MAX_PAGE));
        assert_eq!(
            query(None, Some(&i64::MIN.to_string())),
            page(Cursor::Latest, MAX_PAGE)
        );
    }

    #[test]
    fn non_integers_are_refused() {
        for (change_id, records, error) in [
            (Some("abc"), None, FeedQueryError::ChangeId),
            (Some("1.5"), None, FeedQueryError::ChangeId),
            (Some("99999999999999999999"), None, FeedQueryError::ChangeId),
            (None, Some("ten"), FeedQueryError::Records),
            (Some("1"), Some("1e3"), FeedQueryError::Records),
        ] {
            assert_eq!(FeedQuery::parse(change_id, records), Err(error));
        }
    }

    #[test]
    fn records_render_in_notarys_field_names() {
        let page = FeedPage::new(vec![ChangeRecord {
            id: 7,
            gun: "r.io/acme/app".into(),
            version: 3,
            sha256: "ab".repeat(32),
            category: ChangeCategory::Update,
            created_at: 1_780_000_000,
        }]);
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"count": 1, "records": [{
                "ID": "7", "CreatedAt": "2026-05-28T20:26:40Z", "GUN": "r.io/acme/app",
                "Version": 3, "SHA256": "ab".repeat(32), "Category": "update"
            }]})
        );
    }
}
