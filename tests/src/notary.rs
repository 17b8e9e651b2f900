//! The real Notary v1 CLI (Debian's `notary` 0.7, which `.ci/run` installs)
//! as a test user: its own trust directory, a tagtrust token as its
//! `NOTARY_AUTH` password (user `ci`), and fixed key passphrases so it never
//! prompts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One `notary` user: a trust directory (like `~/.docker/trust`) talking to
/// one server.
pub struct Notary {
    /// Shared by the views [`Notary::with_password`] makes.
    pub trust: std::sync::Arc<tempfile::TempDir>,
    pub server: String,
    pub password: String,
}

impl Notary {
    pub fn new(server_url: &str, password: &str) -> Notary {
        Notary {
            trust: std::sync::Arc::new(tempfile::tempdir().unwrap()),
            server: server_url.to_string(),
            password: password.to_string(),
        }
    }

    /// The same user (trust directory and keys) with other credentials.
    pub fn with_password(&self, password: &str) -> Notary {
        Notary {
            trust: self.trust.clone(),
            server: self.server.clone(),
            password: password.to_string(),
        }
    }

    pub fn trust_dir(&self) -> &Path {
        self.trust.path()
    }

    /// The command, with server, trust directory, credentials and the
    /// passphrases of every key kind set.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("/usr/bin/notary");
        cmd.args(["-s", &self.server, "-d", self.trust_dir().to_str().unwrap()])
            .env(
                "NOTARY_AUTH",
                crate::base64(format!("ci:{}", self.password).as_bytes()),
            )
            .stdin(Stdio::null());
        for role in ["ROOT", "TARGETS", "SNAPSHOT", "DELEGATION"] {
            cmd.env(
                format!("NOTARY_{role}_PASSPHRASE"),
                "notary test passphrase",
            );
        }
        cmd
    }

    /// Run with `args`, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("run /usr/bin/notary (.ci/run installs the notary package)")
    }

    /// Run with `args`, `input` on its standard input; require success.
    pub fn ok_with_input(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /usr/bin/notary");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        crate::ran_ok(
            &format!("notary {args:?}"),
            &child.wait_with_output().unwrap(),
        )
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        crate::ran_ok(&format!("notary {args:?}"), &self.run(args))
    }

    /// Run and require failure; returns stdout and stderr together.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "notary {args:?} unexpectedly succeeded:\n{said}"
        );
        said
    }

    /// `notary list GUN` as (name, hex sha256, size, role) rows.
    pub fn list(&self, gun: &str) -> Vec<(String, String, u64, String)> {
        let out = self.ok(&["list", gun]);
        out.lines()
            .filter_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                match cols[..] {
                    [name, digest, size, role] if digest.len() == 64 => Some((
                        name.to_string(),
                        digest.to_string(),
                        size.parse().ok()?,
                        role.to_string(),
                    )),
                    _ => None,
                }
            })
            .collect()
    }
}

/// A self-signed ECDSA P-256 certificate for `common_name` and its
/// unencrypted PKCS#8 key, written to `dir` by `openssl`: what a delegate
/// brings to `notary delegation add`, or a token service signs with.
/// Returns (key, certificate).
pub fn self_signed_certificate(dir: &Path, common_name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{common_name}.key"));
    let cert = dir.join(format!("{common_name}.crt"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={common_name}"),
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, cert)
}

/// Debian's `notary-server` (memory store, its own local signer, plain
/// HTTP) on a free loopback port, killed when dropped: the server a Notary
/// user moves away from.
pub struct NotaryServer {
    pub url: String,
    _config: tempfile::TempDir,
    _process: crate::KillOnDrop,
}

impl NotaryServer {
    pub fn start() -> NotaryServer {
        let config = tempfile::tempdir().unwrap();
        let port = crate::free_port();
        let file = config.path().join("server.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"server": {{"http_addr": "127.0.0.1:{port}"}}, "trust_service": {{"type": "local"}},
 "storage": {{"backend": "memory"}}, "logging": {{"level": "error"}}}}"#
            ),
        )
        .unwrap();
        let mut cmd = Command::new("/usr/bin/notary-server");
        cmd.arg("-config").arg(&file).stderr(Stdio::null());
        let (url, process) = crate::serve(
            cmd,
            port,
            "/_notary_server/health",
            "notary-server (.ci/run installs the notary package)",
            String::new,
        );
        NotaryServer {
            url,
            _config: config,
            _process: process,
        }
    }
}

impl Notary {
    /// A new user whose trust directory starts as a copy of this one's
    /// (keys and cached metadata), talking to `server_url` with `password`.
    pub fn copied_to(&self, server_url: &str, password: &str) -> Notary {
        let copy = Notary::new(server_url, password);
        let out = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.trust_dir().display()))
            .arg(copy.trust_dir())
            .output()
            .expect("run cp");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        copy
    }
}
