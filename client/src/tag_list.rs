//! The tag list `tag set GUN --from-file FILE` reads: one
//! `TAG sha256:HEX SIZE [MEDIA_TYPE]` per line, blank lines and `#` comments
//! allowed. The whole list is checked before anything is signed, so one bad
//! line publishes nothing.

use crate::publisher::{TagTarget, OCI_MANIFEST};
use std::collections::BTreeMap;

/// One tag of the list and what it points to.
#[derive(Debug, Clone)]
pub struct TagListEntry {
    pub tag: String,
    pub target: TagTarget,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagListError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("the tag list holds no tags")]
    Empty,
}

/// Parse and check the whole list (tag names, digest form, sizes, no tag
/// twice).
pub fn parse_tag_list(text: &str) -> Result<Vec<TagListEntry>, TagListError> {
    let mut entries = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let bad = |reason: String| TagListError::Line { line, reason };
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [tag, digest, size, rest @ ..] = fields.as_slice() else {
            return Err(bad("expected TAG sha256:HEX SIZE [MEDIA_TYPE]".into()));
        };
        let media_type = match rest {
            [] => OCI_MANIFEST,
            [media_type] => media_type,
            _ => return Err(bad("expected TAG sha256:HEX SIZE [MEDIA_TYPE]".into())),
        };
        tagtrust_shared::reference::validate_tag(tag).map_err(|e| bad(e.to_string()))?;
        let size: u64 = size
            .parse()
            .map_err(|_| bad(format!("size {size:?} is not a whole number of bytes")))?;
        let target = TagTarget {
            digest: digest.to_string(),
            size,
            media_type: media_type.to_string(),
            annotations: BTreeMap::new(),
        };
        // The digest's form, as `tag set` checks it.
        target.to_target_file().map_err(|e| bad(e.to_string()))?;
        if let Some(first) = seen.insert(tag.to_string(), line) {
            return Err(bad(format!("tag {tag:?} is already on line {first}")));
        }
        entries.push(TagListEntry {
            tag: tag.to_string(),
            target,
        });
    }
    if entries.is_empty() {
        return Err(TagListError::Empty);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    #[test]
    fn a_list_with_comments_and_media_types() {
        let index = "application/vnd.oci.image.index.v1+json";
        let text = format!(
            "# CI push\n1 {} 10\n\n1.5   {} 20 {index}  # an index\nlatest {} 10\n",
            digest(1),
            digest(2),
            digest(1)
        );
        let list = parse_tag_list(&text).unwrap();
        let tags: Vec<_> = list.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(tags, ["1", "1.5", "latest"]);
        assert_eq!(list[0].target.media_type, OCI_MANIFEST);
        assert_eq!(list[1].target.media_type, index);
        assert_eq!(list[1].target.size, 20);
    }

    #[test]
    fn each_bad_line_names_its_number() {
        let good = format!("ok {} 1\n", digest(1));
        let cases = [
            ("latest".to_string(), "expected TAG"),
            (format!("latest {} 1 a b", digest(1)), "expected TAG"),
            (format!("-bad {} 1", digest(1)), "tag"),
            (format!("latest {} lots", digest(1)), "not a whole number"),
            (
                "latest sha256:ABC 1".to_string(),
                "sha256:<64 lower-case hex>",
            ),
            (format!("ok {} 2", digest(2)), "already on line 1"),
        ];
        for (line, expected) in cases {
            let err = parse_tag_list(&format!("{good}{line}\n")).unwrap_err();
            let TagListError::Line {
                line: number,
                reason,
            } = &err
            else {
                panic!("{err}");
            };
            assert_eq!(*number, 2, "{line}: {err}");
            assert!(reason.contains(expected), "{line}: {reason}");
        }
        assert_eq!(
            parse_tag_list("# nothing\n\n").unwrap_err(),
            TagListError::Empty
        );
    }
}
