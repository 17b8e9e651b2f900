//! A man-in-the-middle HTTP proxy for attack tests: it forwards requests to
//! the real server, except for paths it has been told to answer itself
//! (replaying old metadata, serving tampered bytes). It lives on loopback and
//! closes each connection after one response.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Overrides = Arc<Mutex<HashMap<String, (u16, Vec<u8>)>>>;

pub struct TamperingProxy {
    pub url: String,
    overrides: Overrides,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TamperingProxy {
    /// Start a proxy in front of `upstream` (e.g. `http://127.0.0.1:4443`).
    pub fn start(upstream: &str) -> TamperingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let overrides: Overrides = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.trim_end_matches('/').to_string();
        let thread = {
            let overrides = overrides.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (client, overrides, upstream) =
                                (client.clone(), overrides.clone(), upstream.clone());
                            std::thread::spawn(move || {
                                let _ = handle(stream, &client, &overrides, &upstream);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TamperingProxy {
            url,
            overrides,
            stop,
            thread: Some(thread),
        }
    }

    /// Answer requests for `path` (e.g. `/v2/acme/app/_trust/tuf/timestamp.json`)
    /// with `status` and `body` instead of forwarding them.
    pub fn serve(&self, path: &str, status: u16, body: Vec<u8>) {
        self.overrides
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body));
    }

    /// Forward everything again.
    pub fn clear(&self) {
        self.overrides.lock().unwrap().clear();
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

fn handle(
    mut stream: TcpStream,
    client: &reqwest::blocking::Client,
    overrides: &Overrides,
    upstream: &str,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // Read the request head (bounded).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
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

    let override_ = overrides.lock().unwrap().get(&path).cloned();
    let (status, content_type, response_body) = match override_ {
        Some((status, bytes)) => (status, "application/json".to_string(), bytes),
        None => {
            let method =
                reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
            let mut req = client.request(method, format!("{upstream}{path}"));
            for (name, value) in &headers {
                let lower = name.to_ascii_lowercase();
                if lower == "authorization" || lower == "content-type" {
                    req = req.header(name.as_str(), value.as_str());
                }
            }
            match req.body(body).send() {
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
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response_body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response_body)?;
    stream.flush()
}
