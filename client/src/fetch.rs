//! Downloading with size limits and timeouts.
//!
//! The updater asks for at most `max_length` bytes of every file; a fetcher
//! must stop reading once that is exceeded (an endless-data attack must not
//! exhaust memory) and give up on a server that drips bytes too slowly
//! (slow-retrieval attack).

use std::io::Read;
use std::time::{Duration, Instant};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// 404 or 403: the file is not there. Ends the root chain walk.
    #[error("{url}: not found (HTTP {status})")]
    NotFound { url: String, status: u16 },

    /// Any other non-success HTTP status, with the server's reason if it
    /// gave one (tagtrust-server's `{"errors":[{"message"}]}`).
    #[error("{url}: HTTP {status}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        reason: Option<String>,
    },

    /// More bytes than allowed (endless data attack or an oversized file).
    #[error("endless data attack refused: {url} is larger than the {max_length}-byte limit")]
    TooLarge { url: String, max_length: u64 },

    /// Connect or transfer took longer than allowed.
    #[error("slow retrieval attack refused: {url} did not download within {seconds}s")]
    Timeout { url: String, seconds: u64 },

    /// Transport failure (DNS, connection refused, TLS, ...).
    #[error("{url}: {message}")]
    Transport { url: String, message: String },

    /// The HTTP client could not be built (say, an invalid header).
    #[error("HTTP client: {0}")]
    Client(String),

    /// Offline mode: nothing is downloaded.
    #[error("offline: {url} is not in the local trusted metadata")]
    Offline { url: String },
}

/// The response header in which tagtrust-server states the oldest a
/// healthy server's `timestamp.json` ever is (whole seconds): its re-sign
/// cadence. Advisory only: it tells a consumer whether its `max_age` can be
/// met, and is never used to accept anything.
pub const TIMESTAMP_MAX_AGE_HEADER: &str = "x-tagtrust-timestamp-max-age";

/// Fetches bytes from a URL, reading at most `max_length` of them.
pub trait Fetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError>;

    /// The [`TIMESTAMP_MAX_AGE_HEADER`] of the last `timestamp.json`
    /// fetched, if the server sent a valid one.
    fn timestamp_max_age(&self) -> Option<Duration> {
        None
    }
}

impl<F: Fetcher + ?Sized> Fetcher for &F {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        (**self).fetch(url, max_length)
    }
    fn timestamp_max_age(&self) -> Option<Duration> {
        (**self).timestamp_max_age()
    }
}

impl<F: Fetcher + ?Sized> Fetcher for Box<F> {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        (**self).fetch(url, max_length)
    }
    fn timestamp_max_age(&self) -> Option<Duration> {
        (**self).timestamp_max_age()
    }
}

/// The fetcher of `--offline`: every download fails, so only local trusted
/// metadata can be used.
pub struct OfflineFetcher;

impl Fetcher for OfflineFetcher {
    fn fetch(&self, url: &str, _max_length: u64) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::Offline {
            url: url.to_string(),
        })
    }
}

/// Settings of [`HttpFetcher`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub timeout: Duration,
    /// Extra request headers, e.g. `("Authorization", "Bearer …")`.
    pub headers: Vec<(String, String)>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            headers: Vec::new(),
        }
    }
}

impl HttpOptions {
    /// The one HTTP client builder of the library (metadata, publishes,
    /// registries): these timeouts and headers, tagtrust's user agent.
    pub fn client(&self) -> Result<reqwest::blocking::Client, FetchError> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &self.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| FetchError::Client(format!("header name {name:?}: {e}")))?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|e| FetchError::Client(format!("header {name}: {e}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        // reqwest's `gzip` feature (workspace Cargo.toml) asks for gzip and
        // decompresses: what a fetch counts against its limit is the
        // decompressed bytes, so a small answer that inflates is refused.
        reqwest::blocking::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .default_headers(headers)
            .user_agent(concat!("tagtrust/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Client(crate::error_line::error_line(&e)))
    }

    /// Add `Authorization: Bearer <token>`.
    pub fn with_bearer_token(mut self, token: &str) -> Self {
        self.headers
            .push(("Authorization".into(), format!("Bearer {token}")));
        self
    }
}

/// [`Fetcher`] over HTTP(S) with reqwest's blocking client.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::blocking::Client,
    timeout: Duration,
    /// [`TIMESTAMP_MAX_AGE_HEADER`] of the last `timestamp.json` response.
    timestamp_max_age: std::sync::Arc<std::sync::Mutex<Option<Duration>>>,
}

/// Does `url` name a timestamp role file (`…/timestamp.json`)?
fn is_timestamp_url(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').next() == Some("timestamp.json")
}

/// The advertised timestamp max age of a response: whole seconds, at most
/// ten years (anything else is ignored).
fn advertised_max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(TIMESTAMP_MAX_AGE_HEADER)?.to_str().ok()?.trim();
    let secs: u64 = text.parse().ok()?;
    (secs <= 10 * 366 * 86_400).then(|| Duration::from_secs(secs))
}

impl HttpFetcher {
    pub fn new(options: HttpOptions) -> Result<Self, FetchError> {
        let client = options.client()?;
        Ok(HttpFetcher {
            client,
            timeout: options.timeout,
            timestamp_max_age: Default::default(),
        })
    }

    fn timeout_error(&self, url: &str) -> FetchError {
        FetchError::Timeout {
            url: url.to_string(),
            seconds: self.timeout.as_secs(),
        }
    }

    fn map_reqwest(&self, url: &str, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            return self.timeout_error(url);
        }
        FetchError::Transport {
            url: url.to_string(),
            message: crate::error_line::error_line(&e),
        }
    }
}

/// At most 4 KiB of an error response's body: a server's error answer is
/// never trusted to be small.
pub fn read_error_body(response: reqwest::blocking::Response) -> Vec<u8> {
    use std::io::Read;
    let mut body = Vec::new();
    let _ = response.take(4096).read_to_end(&mut body);
    body
}

/// The messages (or codes) of a tagtrust-server error body,
/// `{"errors":[{"code","message","detail"}]}`, joined with "; "; `None` if
/// the body is not one.
pub fn server_error_message(body: &[u8]) -> Option<String> {
    let parsed: serde_json::Value = serde_json::from_slice(body).ok()?;
    let messages: Vec<String> = parsed
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let text = |k: &str| e.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
            text("message").or_else(|| text("code"))
        })
        .map(|m| m.chars().take(300).collect())
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let started = Instant::now();
        let mut response = self
            .client
            .get(url)
            .send()
            .map_err(|e| self.map_reqwest(url, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Err(FetchError::NotFound {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                reason: server_error_message(&read_error_body(response)),
            });
        }
        if is_timestamp_url(url) {
            *self
                .timestamp_max_age
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = advertised_max_age(response.headers());
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            max_length,
        };
        if response.content_length().is_some_and(|n| n > max_length) {
            return Err(too_large());
        }
        // Read in chunks, never more than max_length + 1 bytes in total:
        // the extra byte tells "exactly at the limit" from "over it".
        let mut body = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let room = (max_length + 1).saturating_sub(body.len() as u64);
            let want = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            if want == 0 {
                return Err(too_large());
            }
            let n = match response.read(&mut chunk[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                        || e.get_ref()
                            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
                            .is_some_and(reqwest::Error::is_timeout)
                        || started.elapsed() >= self.timeout;
                    if timed_out {
                        return Err(self.timeout_error(url));
                    }
                    return Err(FetchError::Transport {
                        url: url.to_string(),
                        message: crate::error_line::error_line(&e),
                    });
                }
            };
            body.extend_from_slice(&chunk[..n]);
            // reqwest's timeout bounds each wait; this bounds the whole
            // transfer against a server that sends a byte now and then.
            if started.elapsed() >= self.timeout {
                return Err(self.timeout_error(url));
            }
        }
        if body.len() as u64 > max_length {
            return Err(too_large());
        }
        Ok(body)
    }

    fn timestamp_max_age(&self) -> Option<Duration> {
        *self
            .timestamp_max_age
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A one-shot HTTP server answering each connection with `respond`.
    fn serve(respond: impl Fn(&mut std::net::TcpStream) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut buf);
                respond(&mut stream);
            }
        });
        format!("http://{addr}/file")
    }

    fn fetcher(timeout: Duration) -> HttpFetcher {
        HttpFetcher::new(HttpOptions {
            connect_timeout: Duration::from_secs(2),
            timeout,
            headers: vec![("Authorization".into(), "Bearer t".into())],
        })
        .unwrap()
    }

    #[test]
    fn body_limits_and_statuses() {
        let url = serve(|s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        });
        let f = fetcher(Duration::from_secs(5));
        assert_eq!(f.fetch(&url, 5).unwrap(), b"hello");
        assert!(matches!(f.fetch(&url, 4), Err(FetchError::TooLarge { .. })));

        // No Content-Length: the limit is enforced while streaming.
        let url = serve(|s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            for _ in 0..64 {
                if s.write_all(&[b'x'; 1024]).is_err() {
                    return;
                }
            }
        });
        let err = f.fetch(&url, 1000).unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::TooLarge {
                    max_length: 1000,
                    ..
                }
            ),
            "{err}"
        );

        for (code, not_found) in [(404, true), (403, true), (500, false)] {
            let url = serve(move |s| {
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            });
            let err = f.fetch(&url, 10).unwrap_err();
            assert_eq!(
                matches!(err, FetchError::NotFound { .. }),
                not_found,
                "{err}"
            );
        }
    }

    /// The server's advertised timestamp max age is read from
    /// `timestamp.json` responses only, and only when it is whole seconds.
    #[test]
    fn timestamp_max_age_header_is_read_from_timestamp_responses() {
        let serve_with = |header: &'static str| {
            let base = serve(move |s| {
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\n{header}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
            });
            base.trim_end_matches("file").to_string()
        };
        let f = fetcher(Duration::from_secs(5));
        assert_eq!(f.timestamp_max_age(), None);
        let base = serve_with("X-Tagtrust-Timestamp-Max-Age: 43200\r\n");
        f.fetch(&format!("{base}v2/g/_trust/tuf/timestamp.json"), 10)
            .unwrap();
        assert_eq!(f.timestamp_max_age(), Some(Duration::from_secs(43200)));
        // Other files do not change it.
        f.fetch(&format!("{base}v2/g/_trust/tuf/1.snapshot.json"), 10)
            .unwrap();
        assert_eq!(f.timestamp_max_age(), Some(Duration::from_secs(43200)));
        // A timestamp without (or with a malformed) header clears it.
        for header in ["", "X-Tagtrust-Timestamp-Max-Age: 12h\r\n"] {
            let base = serve_with(header);
            f.fetch(&format!("{base}timestamp.json"), 10).unwrap();
            assert_eq!(f.timestamp_max_age(), None, "{header:?}");
        }
    }

    /// The client asks for gzip, and its limit counts decompressed bytes:
    /// a small compressed answer that inflates past the limit (a gzip bomb)
    /// is refused like any endless data, having read no more than the limit.
    #[test]
    fn gzip_is_asked_for_and_limited_after_decompression() {
        use flate2::{write::GzEncoder, Compression};
        let inflated = vec![b'x'; 4 << 20];
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&inflated).unwrap();
        let compressed = encoder.finish().unwrap();
        assert!(compressed.len() < 20_000);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/file", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 4096];
                let n = std::io::Read::read(&mut stream, &mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                if !request.contains("accept-encoding: gzip") {
                    let _ = stream.write_all(b"HTTP/1.1 400 X\r\nContent-Length: 0\r\n\r\n");
                    continue;
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    compressed.len()
                );
                let _ = stream.write_all(&compressed);
            }
        });
        let f = fetcher(Duration::from_secs(5));
        let err = f.fetch(&url, 1 << 20).unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { max_length, .. } if max_length == 1 << 20),
            "{err}"
        );
        assert_eq!(f.fetch(&url, 4 << 20).unwrap(), inflated);
    }

    #[test]
    fn slow_retrieval_times_out() {
        let url = serve(|s| {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n");
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(300));
                if s.write_all(b"x").is_err() {
                    return;
                }
            }
        });
        let err = fetcher(Duration::from_secs(1))
            .fetch(&url, 1000)
            .unwrap_err();
        assert!(
            err.to_string().starts_with("slow retrieval attack refused"),
            "{err}"
        );
    }
}
