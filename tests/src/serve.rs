//! `halo serve` for the tests: started on 127.0.0.1 port 0 (it prints the
//! address it bound), its stderr kept in a file to search for secrets,
//! stopped with SIGTERM on drop; and `curl`, the real HTTP client, for
//! requests whose status, headers and body the tests judge.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fs_err as fs;

use crate::{bin, need_tool, run, TestStore};

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    /// The server's stderr.
    pub log: PathBuf,
    /// What it printed on stdout.
    pub stdout: String,
}

impl Server {
    /// `halo --store STORE [-vv] serve --listen 127.0.0.1:0 ARGS`.
    pub fn start(t: &TestStore, args: &[&str]) -> Server {
        Self::start_with(t, &["-vv"], args)
    }

    pub fn start_with(t: &TestStore, global: &[&str], args: &[&str]) -> Server {
        let log = t.root().join(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        let mut child = Command::new(bin("halo"))
            .arg("--store")
            .arg(t.store())
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).expect("log file").into_parts().0)
            .spawn()
            .expect("spawn halo serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read halo serve's first line");
        let url = line
            .trim()
            .strip_prefix("serving on ")
            .unwrap_or_else(|| {
                panic!(
                    "halo serve did not start: {line:?}\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .trim_end_matches('/')
            .to_string();
        Server {
            child,
            url,
            log,
            stdout: line,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait: the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        crate::mount::send_signal(self.child.id(), libc::SIGTERM);
        self.child.wait().expect("wait halo serve")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP answer as curl saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `curl` with `args` (method, headers, data, URL): status, headers, body.
pub fn curl(scratch: &Path, args: &[&str]) -> Answer {
    need_tool("curl", "curl");
    let id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let headers = scratch.join(format!("curl-{id}.headers"));
    let body = scratch.join(format!("curl-{id}.body"));
    let out = run(Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(args));
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = fs::read_to_string(&headers).expect("headers");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body_bytes = fs::read(&body).unwrap_or_default();
    let _ = fs::remove_file(&body);
    Answer {
        status,
        headers,
        body: body_bytes,
    }
}
