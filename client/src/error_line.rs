//! One line from an error and its causes, each cause said once.
//!
//! Library errors include their cause in their own message (so `{err}`
//! says everything) and also expose it as `source()` (so programs can walk
//! it); printing the chain naively would repeat each cause.

/// `err`, then each cause whose text the line does not hold yet, joined
/// with ": ", newlines made spaces. Raw text: escape it before showing it
/// on a terminal ([`crate::terminal::escape`]).
pub fn error_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !message.contains(&s) {
            message.push_str(": ");
            message.push_str(&s);
        }
        source = e.source();
    }
    message.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("context")]
    struct Context {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::other("disk\nfull");
        assert_eq!(error_line(&Outer { source: io() }), "outer: disk full");
        assert_eq!(error_line(&Context { source: io() }), "context: disk full");
    }
}
