//! A man-in-the-middle HTTP proxy for attack tests: it forwards requests to
//! the real server, except for paths it has been told to tamper with:
//! replay or swap (answer with given bytes), delay, trickle (slow
//! retrieval), truncate and inflate (endless data). It lives on loopback and
//! closes each connection after one response.
//!
//! [`TamperingProxy::start_static`] makes one with no upstream at all: a
//! small static server answering only the paths it has been given (404
//! elsewhere), for repositories a test builds itself.
//!
//! Everything is bounded: each tampered response gives up after
//! [`MAX_TAMPER_TIME`], on a failed write, or when the proxy is dropped.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any tampered response (delay, trickle, inflate) goes on.
pub const MAX_TAMPER_TIME: Duration = Duration::from_secs(180);

/// What the proxy does with requests for one path.
#[derive(Debug, Clone)]
pub enum Tamper {
    /// Answer with this status and body instead of forwarding (replay, swap).
    Serve { status: u16, body: Vec<u8> },
    /// Hold the response back this long, then send it (a server that hangs).
    Delay(Duration),
    /// Send the status line and headers at once, then the body one byte
    /// every `interval` (slow retrieval).
    Trickle { interval: Duration },
    /// Announce the full Content-Length but send only the first `keep`
    /// bytes of the body, then close.
    Truncate { keep: usize },
    /// Send the real body followed by filler up to `total` bytes (endless
    /// data), with that total as Content-Length if `declare_length`, else
    /// delimited by closing the connection.
    Inflate { total: u64, declare_length: bool },
}

#[derive(Default)]
struct State {
    tampers: HashMap<String, Tamper>,
    /// Body bytes written per tampered path (all requests together).
    sent: HashMap<String, u64>,
    /// Requests seen per path (tampered or not).
    requests: HashMap<String, u64>,
    /// Every honestly forwarded response, in order.
    forwarded: Vec<Forwarded>,
}

/// One response the proxy forwarded untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Body bytes.
    pub bytes: u64,
}

type Shared = Arc<Mutex<State>>;

pub struct TamperingProxy {
    pub url: String,
    state: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TamperingProxy {
    /// Start a proxy in front of `upstream` (e.g. `http://127.0.0.1:4443`).
    pub fn start(upstream: &str) -> TamperingProxy {
        Self::launch(Some(upstream.trim_end_matches('/').to_string()))
    }

    /// Start a static server: only paths given with [`Self::serve`] or
    /// [`Self::tamper`] answer; everything else is a 404.
    pub fn start_static() -> TamperingProxy {
        Self::launch(None)
    }

    fn launch(upstream: Option<String>) -> TamperingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let state: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let ctx = Ctx {
                                client: client.clone(),
                                state: state.clone(),
                                upstream: upstream.clone(),
                                stop: stop.clone(),
                            };
                            std::thread::spawn(move || {
                                let _ = handle(stream, &ctx);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TamperingProxy {
            url,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Answer requests for `path` (e.g. `/v2/acme/app/_trust/tuf/timestamp.json`)
    /// with `status` and `body` instead of forwarding them.
    pub fn serve(&self, path: &str, status: u16, body: Vec<u8>) {
        self.tamper(path, Tamper::Serve { status, body });
    }

    /// Tamper with responses for `path` as `how` says.
    pub fn tamper(&self, path: &str, how: Tamper) {
        self.state
            .lock()
            .unwrap()
            .tampers
            .insert(path.to_string(), how);
    }

    /// Forward `path` honestly again.
    pub fn forward(&self, path: &str) {
        self.state.lock().unwrap().tampers.remove(path);
    }

    /// Forward everything again.
    pub fn clear(&self) {
        self.state.lock().unwrap().tampers.clear();
    }

    /// Body bytes the proxy managed to write for tampered responses to `path`.
    pub fn body_bytes_sent(&self, path: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .sent
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The responses forwarded untouched since the last call (or the
    /// start), in order: what a client fetched, for counting requests and
    /// bytes.
    pub fn take_forwarded(&self) -> Vec<Forwarded> {
        std::mem::take(&mut self.state.lock().unwrap().forwarded)
    }

    /// How many requests for `path` the proxy has seen.
    pub fn requests(&self, path: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .requests
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for TamperingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Ctx {
    client: reqwest::blocking::Client,
    state: Shared,
    upstream: Option<String>,
    stop: Arc<AtomicBool>,
}

impl Ctx {
    fn stopped(&self, started: Instant) -> bool {
        self.stop.load(Ordering::Relaxed) || started.elapsed() > MAX_TAMPER_TIME
    }

    fn count_sent(&self, path: &str, n: usize) {
        *self
            .state
            .lock()
            .unwrap()
            .sent
            .entry(path.to_string())
            .or_default() += n as u64;
    }

    /// Sleep `d` in small steps; false if the proxy stopped meanwhile.
    fn sleep(&self, d: Duration, started: Instant) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopped(started) {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        true
    }
}

/// One HTTP/1.1 request as the test servers here read it.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read one request (head bounded to 64 KiB, body per Content-Length);
/// `None` if the peer closed or sent an oversized head.
pub(crate) fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    // Read the request head (bounded).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            }
            headers.push((name, value));
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < content_length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// The honest answer: from upstream, or a 404 for a static proxy.
fn forward(ctx: &Ctx, req: Request) -> (u16, String, Vec<u8>) {
    let Some(upstream) = &ctx.upstream else {
        return (404, "text/plain".to_string(), b"not found".to_vec());
    };
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = ctx
        .client
        .request(method, format!("{upstream}{}", req.path));
    for (name, value) in &req.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" || lower == "content-type" {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    match builder.body(req.body).send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            (
                status,
                ct,
                resp.bytes().map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
        Err(_) => (502, "text/plain".to_string(), b"bad gateway".to_vec()),
    }
}

fn head(status: u16, content_type: &str, length: Option<u64>) -> String {
    let length = length
        .map(|n| format!("Content-Length: {n}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{length}Connection: close\r\n\r\n"
    )
}

fn handle(mut stream: TcpStream, ctx: &Ctx) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // A client that stops reading must not pin a thread forever.
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let Some(req) = read_request(&mut stream)? else {
        return Ok(());
    };
    let path = req.path.clone();
    let tamper = {
        let mut state = ctx.state.lock().unwrap();
        *state.requests.entry(path.clone()).or_default() += 1;
        state.tampers.get(&path).cloned()
    };
    let started = Instant::now();
    match tamper {
        None => {
            let method = req.method.clone();
            let (status, ct, body) = forward(ctx, req);
            ctx.state.lock().unwrap().forwarded.push(Forwarded {
                method,
                path: path.clone(),
                status,
                bytes: body.len() as u64,
            });
            stream.write_all(head(status, &ct, Some(body.len() as u64)).as_bytes())?;
            stream.write_all(&body)?;
        }
        Some(Tamper::Serve { status, body }) => {
            stream
                .write_all(head(status, "application/json", Some(body.len() as u64)).as_bytes())?;
            stream.write_all(&body)?;
            ctx.count_sent(&path, body.len());
        }
        Some(Tamper::Delay(d)) => {
            let (status, ct, body) = forward(ctx, req);
            if !ctx.sleep(d, started) {
                return Ok(());
            }
            stream.write_all(head(status, &ct, Some(body.len() as u64)).as_bytes())?;
            stream.write_all(&body)?;
            ctx.count_sent(&path, body.len());
        }
        Some(Tamper::Trickle { interval }) => {
            let (status, ct, body) = forward(ctx, req);
            stream.write_all(head(status, &ct, Some(body.len() as u64)).as_bytes())?;
            stream.flush()?;
            for byte in body {
                if !ctx.sleep(interval, started) {
                    return Ok(());
                }
                stream.write_all(&[byte])?;
                stream.flush()?;
                ctx.count_sent(&path, 1);
            }
        }
        Some(Tamper::Truncate { keep }) => {
            let (status, ct, body) = forward(ctx, req);
            stream.write_all(head(status, &ct, Some(body.len() as u64)).as_bytes())?;
            let keep = keep.min(body.len());
            stream.write_all(&body[..keep])?;
            ctx.count_sent(&path, keep);
        }
        Some(Tamper::Inflate {
            total,
            declare_length,
        }) => {
            let (status, ct, body) = forward(ctx, req);
            let length = declare_length.then_some(total);
            stream.write_all(head(status, &ct, length).as_bytes())?;
            let prefix = body.len().min(usize::try_from(total).unwrap_or(usize::MAX));
            stream.write_all(&body[..prefix])?;
            ctx.count_sent(&path, prefix);
            let filler = [b' '; 64 * 1024];
            let mut written = prefix as u64;
            while written < total {
                if ctx.stopped(started) {
                    return Ok(());
                }
                let n = filler
                    .len()
                    .min(usize::try_from(total - written).unwrap_or(usize::MAX));
                // Fails once the client has closed the connection.
                stream.write_all(&filler[..n])?;
                ctx.count_sent(&path, n);
                written += n as u64;
            }
        }
    }
    stream.flush()
}
