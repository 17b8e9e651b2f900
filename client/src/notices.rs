//! Things the user should be told that are not errors, handed to the
//! caller (the library never prints).

/// Things the user should be told that are not errors (a branch of the
/// delegation tree skipped, a `max_age` the server cannot meet). The
/// library never prints: it hands each line to the caller's sink, if any,
/// as it happens, and keeps them for [`Self::take`]. Lines are raw text
/// (they can quote metadata); the renderer escapes them. Clones share one
/// log.
#[derive(Clone, Default)]
pub struct Notices {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    sink: Option<std::sync::Arc<NoticeSink>>,
}

/// Where a caller wants notices shown as they happen.
type NoticeSink = dyn Fn(&str) + Send + Sync;

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("log", &self.log)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Notices {
    /// Notices that are also handed to `sink` as they happen.
    pub fn with_sink(sink: impl Fn(&str) + Send + Sync + 'static) -> Notices {
        Notices {
            log: Default::default(),
            sink: Some(std::sync::Arc::new(sink)),
        }
    }

    pub fn push(&self, line: impl Into<String>) {
        let line = line.into();
        if let Some(sink) = &self.sink {
            sink(&line);
        }
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// The notices so far, removing them from the log.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
